"""Zip an export folder for download. Files are streamed from disk into the archive."""

import os
import tempfile
import zipfile
from pathlib import Path


def zip_export(folder: Path, destination: Path | None = None) -> Path:
    """Write `<folder>.zip` (or `destination`) holding the folder's files under its name.

    The archive is built in a temporary file beside the destination and renamed into place,
    so a half-written zip is never left under the final name.
    """
    destination = destination or folder.with_name(folder.name + ".zip")
    fd, temp_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".partial", dir=destination.parent
    )
    os.close(fd)
    temp = Path(temp_name)
    try:
        with zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.iterdir()):
                if path.is_file():
                    archive.write(path, arcname=f"{folder.name}/{path.name}")
        os.replace(temp, destination)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return destination
