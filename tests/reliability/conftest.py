import os
from pathlib import Path

import pytest


@pytest.fixture
def run_dir(request: pytest.FixtureRequest) -> Path:
    """Where a test keeps its server log and figures; it outlives pytest's rotating tmp dirs
    (`.pickwise-test/reliability/<test>/`, gitignored)."""
    name: str = request.node.name
    folder = Path(os.environ["PICKWISE_DATA_DIR"]) / "reliability" / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    return folder
