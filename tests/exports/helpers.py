"""Reading an export folder back in tests."""

import json
from pathlib import Path
from typing import Any

import yaml


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_manifest(folder: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return manifest


def card_front_matter(folder: Path) -> dict[str, Any]:
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    header = text.split("\n---\n", 1)[0].removeprefix("---\n")
    front: dict[str, Any] = yaml.safe_load(header)
    return front
