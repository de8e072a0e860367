"""Folders that travel inside the package: `pickwise.frontend` (templates, static files) and
`pickwise.migrations` (Alembic), kept at the top of the repository and mapped into the
package by setup.py. Found through importlib.resources, so a wheel installed anywhere and the
editable install of the checkout use the same code."""

from importlib.resources import files
from pathlib import Path

FRONTEND_PACKAGE = "pickwise.frontend"
MIGRATIONS_PACKAGE = "pickwise.migrations"


def package_folder(package: str) -> Path:
    """The folder of `package` on disk (Jinja2, Starlette and Alembic need real paths)."""
    folder = files(package)
    if not isinstance(folder, Path):
        raise RuntimeError(f"{package} must be installed as files on disk, not in a zip archive")
    return folder
