from collections.abc import AsyncIterator

from pickwise.batches.parsing.reader import validate
from pickwise.batches.parsing.report import ImportLimits
from pickwise.batches.parsing.spooling import spool_upload
from tests.batches.import_files import jsonl, responses_record


async def upload(data: bytes, chunk_size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk_size):
        yield data[start : start + chunk_size]


async def test_spooled_upload_validates_twice() -> None:
    data = jsonl(*(responses_record(f"p{i}") for i in range(100)))
    spool = await spool_upload(upload(data, 777), ImportLimits())
    with spool:
        first = validate(spool, filename="b.jsonl")
        spool.seek(0)
        second = validate(spool, filename="b.jsonl")
    assert first.valid and first == second
    assert first.byte_count == len(data)


async def test_spooling_stops_one_byte_past_the_limit() -> None:
    data = jsonl(*(responses_record(f"p{i}") for i in range(100)))
    limits = ImportLimits(max_file_bytes=1000)
    with await spool_upload(upload(data, 300), limits) as spool:
        assert len(spool.read()) == 1001
        spool.seek(0)
        report = validate(spool, filename="b.jsonl", limits=limits)
    assert "larger than the limit of 1,000 bytes" in report.errors[-1].message
