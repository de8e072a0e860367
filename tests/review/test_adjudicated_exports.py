"""Adjudicated decisions win over votes in every export format and aggregation; pairs
excluded from exports stay out; an export of an explorer selection holds exactly its pairs
and says so in its manifest (files, API download, and `pickwise export`)."""

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.db import get_engine, session_factory
from pickwise.exports import service
from pickwise.exports.dataset.aggregation import AggregationMode
from pickwise.exports.dataset.formats import ExportFormat
from pickwise.exports.dataset.splits import Split
from pickwise.exports.schemas import ExportQuery
from pickwise.models import Pair, Project, User
from pickwise.review import pair_service
from pickwise.review.schemas import AdjudicationIn
from pickwise.vocabulary import Decision
from tests.factories import bearer_headers, make_pairs, make_project, make_user
from tests.review.helpers import vote

PICKWISE = str(Path(sys.executable).with_name("pickwise"))
# Per pair: the votes, then the decision (None: none; "withdrawn": one made and withdrawn).
PAIRS: list[tuple[list[str], str | None]] = [
    (["a", "a", "b"], "b"),  # 0: the majority says A, the admin B
    (["a", "b", "tie"], "a"),  # 1: no majority; decided A
    (["a", "a", "a"], "drop"),  # 2: unanimous, but dropped
    (["b", "b", "a"], "tie"),  # 3: decided a tie: no preference
    (["a", "b", "b"], None),  # 4: the votes decide
    ([], "a"),  # 5: no votes at all, decided A
    (["a", "a", "b"], "withdrawn"),  # 6: the decision was withdrawn: the votes decide
    (["b", "b", "b"], None),  # 7: excluded from exports
]
EXCLUDED = 7
# What each pair exports when its decision rules: its winner, or None (left out).
DECIDED = {0: "b", 1: "a", 2: None, 3: None, 5: "a"}


@dataclass
class World:
    project: Project
    pairs: list[Pair]
    admin: User


async def build(session: AsyncSession) -> World:
    project = await make_project(session, raters_per_pair=3)
    pairs = await make_pairs(session, project, len(PAIRS))
    raters = [await make_user(session) for _ in range(3)]
    admin = await make_user(session, role="admin")
    for pair, (choices, decision) in zip(pairs, PAIRS, strict=True):
        for rater, choice in zip(raters, choices, strict=False):
            await vote(session, pair, rater, choice)
        if decision is None:
            continue
        chosen = Decision.A if decision == "withdrawn" else Decision(decision)
        await pair_service.adjudicate(
            session, project, pair.id, admin, AdjudicationIn(decision=chosen)
        )
        if decision == "withdrawn":
            await pair_service.withdraw(session, project, pair.id, admin)
    pairs[EXCLUDED].excluded = True
    await session.flush()
    return World(project, pairs, admin)


def pair_of(text: str, world: World) -> int:
    """Which pair an answer belongs to (the factory's texts name their question)."""
    question = int(text.rsplit(" ", 1)[1].rstrip("."))
    return question


def winner_of(text: str) -> str:
    return "a" if text.startswith("Answer 0") else "b"


def exported(rows: list[dict[str, Any]], export_format: ExportFormat) -> list[tuple[int, str]]:
    """(question number, winning side) for every preference row."""
    found = []
    for row in rows:
        match export_format:
            case ExportFormat.TRL:
                chosen = row["chosen"]
            case ExportFormat.OPENAI:
                chosen = row["preferred_output"][0]["content"]
            case ExportFormat.HH_RLHF:
                chosen = row["chosen"].rsplit("\n\nAssistant: ", 1)[1]
            case ExportFormat.KTO:
                if not row["label"]:
                    continue
                chosen = row["completion"]
        found.append((int(chosen.rsplit(" ", 1)[1].rstrip(".")), winner_of(chosen)))
    return sorted(found)


async def write(session: AsyncSession, world: World, tmp_path: Path, query: ExportQuery) -> Any:
    connection = await session.connection()
    selection = await service.selection_for(connection, world.project, query)
    return await service.write_folder(
        connection, world.project, selection, query.options(), tmp_path, record=query.record()
    )


def rows_of(result: Any) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for split in Split
        for line in (result.path / f"{split.value}.jsonl").read_text().splitlines()
    ]


PREFERENCE_FORMATS = [f for f in ExportFormat if f is not ExportFormat.VOTES]


@pytest.mark.parametrize("export_format", PREFERENCE_FORMATS)
@pytest.mark.parametrize("mode", list(AggregationMode))
@pytest.mark.parametrize("strict", [False, True])
async def test_decisions_win_over_votes(
    session: AsyncSession,
    tmp_path: Path,
    export_format: ExportFormat,
    mode: AggregationMode,
    strict: bool,
) -> None:
    world = await build(session)
    # Strict thresholds leave out every undecided pair; decided ones do not care.
    thresholds = {"min_votes": 3, "min_agreement": 1.0} if strict else {}
    query = ExportQuery(format=export_format, aggregation=mode, test_fraction=0.5, **thresholds)
    result = await write(session, world, tmp_path, query)
    expected = sorted((number, side) for number, side in DECIDED.items() if side is not None)
    undecided = {4: ["a", "b", "b"], 6: ["a", "a", "b"]}
    if not strict:
        for number, choices in undecided.items():
            if mode is AggregationMode.EACH_VOTE:
                expected += [(number, choice) for choice in choices]
            elif mode is AggregationMode.MAJORITY:
                expected.append((number, max(set(choices), key=choices.count)))
    assert exported(rows_of(result), export_format) == sorted(expected)
    counts = result.manifest["counts"]
    assert counts["adjudicated"] == {"kept": 3, "dropped": 2}
    assert counts["dropped"].get("adjudicated_drop") == 1
    assert counts["dropped"].get("adjudicated_tie") == 1
    card = (result.path / "README.md").read_text()
    assert "decided by an admin (adjudicated): 3 pairs exported as decided, 2 left out" in card


async def test_the_votes_file_carries_decisions(session: AsyncSession, tmp_path: Path) -> None:
    world = await build(session)
    result = await write(session, world, tmp_path, ExportQuery(format=ExportFormat.VOTES))
    by_question: dict[int, set[str]] = {}
    for row in rows_of(result):
        by_question.setdefault(pair_of(row["response_a"], world), set()).add(row["adjudication"])
    # 2 (dropped), 5 (no votes) and 7 (excluded) give no rows; a withdrawn decision is none.
    assert by_question == {0: {"b"}, 1: {"a"}, 3: {"tie"}, 4: {""}, 6: {""}}
    assert result.manifest["counts"]["dropped"] == {"adjudicated_drop": 3}


async def test_an_explorer_selection_exports_its_pairs_and_says_so(
    client: AsyncClient, session: AsyncSession, tmp_path: Path
) -> None:
    world = await build(session)
    query = ExportQuery(format=ExportFormat.TRL, status=["adjudicated"], test_fraction=0.0)
    result = await write(session, world, tmp_path, query)
    assert exported(rows_of(result), ExportFormat.TRL) == [(0, "b"), (1, "a"), (5, "a")]
    assert result.manifest["selection"]["filter"] == {"status": ["adjudicated"]}
    assert "--status adjudicated" in result.manifest["command"]

    headers = await bearer_headers(session, world.admin)
    download = await client.get(
        f"/api/v1/projects/{world.project.id}/export",
        params={"format": "trl", "status": "disputed", "test_fraction": 0},
        headers=headers,
    )
    assert download.status_code == 200, download.text
    rows = [json.loads(line) for line in download.text.splitlines()]
    # Disputed: complete without a majority (pair 1); it exports as decided.
    assert exported(rows, ExportFormat.TRL) == [(1, "a")]


def read_folder(out: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows of train.jsonl and the manifest of the one export folder in `out`."""
    (folder,) = out.iterdir()
    rows = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    return rows, json.loads((folder / "manifest.json").read_text())


async def test_the_cli_takes_the_same_filter(live_app: Any, tmp_path: Path) -> None:
    async with session_factory(get_engine())() as session, session.begin():
        world = await build(session)
        slug = world.project.slug
    args = ["export", slug, "--format", "trl", "--test-fraction", "0", "--out", str(tmp_path)]
    args += ["--status", "adjudicated", "--search", "question"]
    done = await asyncio.to_thread(
        subprocess.run, [PICKWISE, *args], capture_output=True, text=True, env=os.environ.copy()
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows, manifest = read_folder(tmp_path)
    assert exported(rows, ExportFormat.TRL) == [(0, "b"), (1, "a"), (5, "a")]
    assert manifest["selection"]["filter"] == {"status": ["adjudicated"], "q": "question"}
    bad = await asyncio.to_thread(
        subprocess.run,
        [PICKWISE, "export", slug, "--agreement-max", "3", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert bad.returncode == 2 and "--agreement-max" in bad.stdout + bad.stderr
