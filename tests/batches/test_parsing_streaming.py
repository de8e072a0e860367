"""Memory must not grow with the file: only the ids seen are kept (to find duplicates)."""

import tracemalloc
from pathlib import Path

from pickwise.batches.parsing.reader import validate

LINES = 200_000
PADDING = "lorem ipsum dolor sit amet " * 12


def write_big_file(path: Path) -> int:
    template = (
        '{"id": "prompt-%06d", "prompt": "Question %d: ' + PADDING + '", "responses": ['
        '{"model": "model-a", "content": "Answer A to %d: ' + PADDING + '"}, '
        '{"model": "model-b", "content": "Answer B to %d: ' + PADDING + '"}]}\n'
    )
    with path.open("wb") as out:
        for start in range(0, LINES, 10_000):
            block = "".join(template % (i, i, i, i) for i in range(start, start + 10_000))
            out.write(block.encode())
    return path.stat().st_size


def test_validating_200k_lines_keeps_memory_well_under_the_file_size(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    file_size = write_big_file(path)

    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            report = validate(stream, filename=path.name)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        path.unlink()  # 150 MB: do not leave it to pytest's kept temporary folders.

    assert report.valid, report.summary()
    assert report.prompt_count == LINES
    assert report.byte_count == file_size
    # The ids seen take ~25 MB here (~120 bytes each); everything else is one line at a time.
    assert peak < file_size / 3, (peak, file_size)
