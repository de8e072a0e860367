"""Property: whatever valid file is imported and however it is rated, every export format
gives files a trainer can read.

End to end on committed data: a generated JSONL file (tests/batches/record_strategies) goes
in through the import API, a rater judges pairs through the rating API with generated
choices, strengths, rationales and criteria, and then each format is written as a folder
(`exports.service.write_folder`) and downloaded over HTTP. Every line must be UTF-8 JSON with
the format's fixed keys and types, no nulls anywhere and no empty text where content belongs.
"""

import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from httpx import ASGITransport, AsyncClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pickwise.core.db import get_engine, get_read_engine, session_factory
from pickwise.exports import service
from pickwise.exports.dataset.formats import ExportFormat
from pickwise.exports.dataset.splits import Split
from pickwise.exports.schemas import ExportQuery
from tests.batches.record_strategies import any_text, pair_records, responses_records
from tests.batches.test_parsing_roundtrip import jsonl_files
from tests.factories import add_member, bearer_headers, make_project, make_user

MAX_JUDGMENTS = 6
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
ROLES = {"system", "user", "assistant"}
Check = Callable[[Any], bool]


def text(value: Any) -> bool:
    """Content: a string with something in it."""
    return isinstance(value, str) and bool(value.strip())


def any_string(value: Any) -> bool:
    return isinstance(value, str)


def integer(value: Any) -> bool:
    return type(value) is int


def boolean(value: Any) -> bool:
    return type(value) is bool


def messages(value: Any, *, roles: set[str] = ROLES) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(m, dict)
            and set(m) == {"role", "content"}
            and m["role"] in roles
            and text(m["content"])
            for m in value
        )
    )


def prompt_messages(value: Any) -> bool:
    return messages(value) and value[-1]["role"] == "user"


def one_assistant_message(value: Any) -> bool:
    return messages(value, roles={"assistant"}) and len(value) == 1


def criteria(value: Any) -> bool:
    """An object of criterion → canonical winner, "" where the vote gave none."""
    return isinstance(value, dict) and all(side in {"a", "b", "tie", ""} for side in value.values())


def hh_transcript(value: Any) -> bool:
    return text(value) and value.startswith("\n\nHuman: ") and "\n\nAssistant: " in value


VOTES: dict[str, Check] = {
    "judgment_id": integer,
    "pair_id": integer,
    "batch_id": integer,
    "prompt_id": text,
    "prompt": prompt_messages,
    "response_a_id": integer,
    "response_b_id": integer,
    "model_a": text,
    "model_b": text,
    "response_a": text,
    "response_b": text,
    "winner": lambda v: v in {"a", "b", "tie", "both_bad"},
    "winner_as_shown": lambda v: v in {"left", "right", "tie", "both_bad"},
    "strength_index": lambda v: integer(v) and v >= -1,
    "strength_label": any_string,
    "strength_scale": lambda v: isinstance(v, list) and all(text(label) for label in v),
    "rationale": any_string,
    "criteria": criteria,
    "rater": text,
    "shown_left": lambda v: v in {"a", "b"},
    "left_response_id": integer,
    "shown_at": lambda v: isinstance(v, str) and bool(TIMESTAMP.fullmatch(v)),
    "submitted_at": lambda v: isinstance(v, str) and bool(TIMESTAMP.fullmatch(v)),
    "is_gold": boolean,
    "adjudication": lambda v: v in {"", "a", "b", "tie", "both_bad"},
}
# trl and kto rows are all strings or all messages, never mixed (TRL looks at one row).
TRL_STRINGS: dict[str, Check] = {
    "prompt": text,
    "chosen": text,
    "rejected": text,
    "margin": lambda v: type(v) is float and 0.0 <= v <= 1.0,
}
TRL_MESSAGES: dict[str, Check] = {
    **TRL_STRINGS,
    "prompt": prompt_messages,
    "chosen": one_assistant_message,
    "rejected": one_assistant_message,
}
KTO_STRINGS: dict[str, Check] = {"prompt": text, "completion": text, "label": boolean}
KTO_MESSAGES: dict[str, Check] = {
    "prompt": prompt_messages,
    "completion": one_assistant_message,
    "label": boolean,
}
OPENAI: dict[str, Check] = {
    "input": lambda v: (
        isinstance(v, dict) and set(v) == {"messages"} and prompt_messages(v["messages"])
    ),
    "preferred_output": one_assistant_message,
    "non_preferred_output": one_assistant_message,
}
HH_RLHF: dict[str, Check] = {"chosen": hh_transcript, "rejected": hh_transcript}
SHAPES: dict[ExportFormat, tuple[dict[str, Check], ...]] = {
    ExportFormat.VOTES: (VOTES,),
    ExportFormat.TRL: (TRL_STRINGS, TRL_MESSAGES),
    ExportFormat.KTO: (KTO_STRINGS, KTO_MESSAGES),
    ExportFormat.OPENAI: (OPENAI,),
    ExportFormat.HH_RLHF: (HH_RLHF,),
}


def contains_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(contains_null(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_null(v) for v in value)
    return False


def read_lines(data: bytes) -> list[dict[str, Any]]:
    """JSON Lines as trainers read them: UTF-8, one object per "\\n"-ended line."""
    assert data == b"" or data.endswith(b"\n"), "the last line is not ended"
    rows = []
    for line in data.split(b"\n")[:-1]:
        row = json.loads(line.decode("utf-8"))  # strict UTF-8
        assert isinstance(row, dict), line
        rows.append(row)
    return rows


def check_rows(export_format: ExportFormat, rows: list[dict[str, Any]], where: str) -> None:
    """Every row has one of the format's shapes, and all rows of a file the same one."""
    shapes_used = set()
    for row in rows:
        assert not contains_null(row), f"{where}: null in {row}"
        matching = [
            index
            for index, shape in enumerate(SHAPES[export_format])
            if list(row) == list(shape) and all(check(row[key]) for key, check in shape.items())
        ]
        assert matching, f"{where}: {export_format.value} row of the wrong shape: {row}"
        shapes_used.add(matching[0])
    assert len(shapes_used) <= 1, f"{where}: rows of different shapes in one file"
    if export_format is ExportFormat.VOTES:
        # One set of criteria keys per file, or datasets cannot give the column one type.
        assert len({tuple(row["criteria"]) for row in rows}) <= 1, f"{where}: criteria keys vary"


async def make_rated_project(
    app: Any, data: st.DataObject, jsonl: bytes
) -> tuple[Any, dict[str, str], int]:
    """A committed project with the file imported and up to MAX_JUDGMENTS judgments."""
    scale = data.draw(st.sampled_from([[], ["a bit", "a lot"], ["slightly", "clearly", "much"]]))
    names = data.draw(st.sampled_from([[], ["accuracy"], ["accuracy", "tone"]]))
    async with session_factory(get_engine())() as session, session.begin():
        project = await make_project(session, strength_scale=scale, criteria=names)
        admin = await make_user(session, role="admin")
        rater = await make_user(session)
        await add_member(session, project, rater)
        admin_headers = await bearer_headers(session, admin)
        rater_headers = await bearer_headers(session, rater)
    judged = 0
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        imported = await client.post(
            f"/api/v1/projects/{project.id}/batches",
            params={"filename": "generated.jsonl"},
            content=jsonl,
            headers=admin_headers,
        )
        assert imported.status_code == 201, imported.text
        while judged < MAX_JUDGMENTS:
            pair = await client.get(f"/api/v1/projects/{project.id}/next", headers=rater_headers)
            assignment_id = pair.json()["assignment_id"]
            if assignment_id is None:
                break
            choice = data.draw(st.sampled_from(["left", "right", "tie", "both_bad"]))
            body: dict[str, Any] = {"choice": choice}
            if scale and choice in ("left", "right"):
                body["strength"] = data.draw(st.integers(0, len(scale) - 1))
            body["rationale"] = data.draw(st.none() | any_text)
            body["criteria"] = {
                name: data.draw(st.sampled_from(["left", "right", "tie"]))
                for name in names
                if data.draw(st.booleans())
            }
            stored = await client.post(
                f"/api/v1/assignments/{assignment_id}/judgment", json=body, headers=rater_headers
            )
            assert stored.status_code == 201, stored.text
            judged += 1
    return project, admin_headers, judged


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    # One file holds one record shape (the importer refuses a mix).
    file=jsonl_files(responses_records()) | jsonl_files(pair_records()),
    data=st.data(),
)
async def test_anything_imported_and_rated_exports_to_valid_files(
    live_app: Any, file: tuple[bytes, Any], data: st.DataObject
) -> None:
    jsonl, _ = file
    project, admin_headers, judged = await make_rated_project(live_app, data, jsonl)
    event(f"judgments: {judged}")
    with tempfile.TemporaryDirectory() as folder:
        for export_format in ExportFormat:
            query = ExportQuery(format=export_format, test_fraction=0.5)
            async with get_read_engine().begin() as connection:
                result = await service.write_folder(
                    connection,
                    project,
                    await service.selection_for(connection, project, query),
                    query.options(),
                    Path(folder),
                )
            rows = []
            for split in Split:
                split_rows = read_lines((result.path / f"{split.value}.jsonl").read_bytes())
                check_rows(export_format, split_rows, f"{export_format.value}/{split.value}")
                rows += split_rows
            if export_format is ExportFormat.VOTES:
                assert len(rows) == judged
            event(f"{export_format.value} rows: {'some' if rows else 'none'}")
            json.loads((result.path / "manifest.json").read_text(encoding="utf-8"))

            async with AsyncClient(
                transport=ASGITransport(app=live_app), base_url="http://t"
            ) as client:
                download = await client.get(
                    f"/api/v1/projects/{project.id}/export",
                    params={"format": export_format.value, "test_fraction": 0.5},
                    headers=admin_headers,
                )
            assert download.status_code == 200
            streamed = read_lines(download.content)
            check_rows(export_format, streamed, f"{export_format.value} download")
            # The download holds the same rows as the two files.
            key = lambda row: json.dumps(row, sort_keys=True)  # noqa: E731
            assert sorted(map(key, streamed)) == sorted(map(key, rows))
