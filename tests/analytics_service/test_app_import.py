"""The app starts without scipy: the analytics modules import it only when they compute."""

import subprocess
import sys


def test_importing_the_app_does_not_import_scipy() -> None:
    script = (
        "import sys\n"
        "import pickwise.app\n"
        "import pickwise.analytics.service\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'scipy'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )

    assert result.stdout.strip() == "[]"
