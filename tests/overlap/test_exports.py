"""An adaptive project's export: pairs with 2 to 5 votes aggregate like any others, and the
manifest and the card record the overlap policy and the votes per pair."""

import json
from pathlib import Path

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.exports import service
from pickwise.exports.dataset.aggregation import AggregationOptions
from pickwise.exports.dataset.formats import ExportFormat
from pickwise.exports.dataset.pipeline import ExportOptions
from pickwise.exports.dataset.writer import MANIFEST, README
from pickwise.exports.repository import Selection
from tests.factories import make_pairs, make_project
from tests.overlap.crowd import Crowd

# Per pair, the votes in the order they come; the rule takes 2, 4, 5 and 4 of them.
VOTES = [("a", "a"), ("a", "b", "a", "a"), ("a", "b", "a", "b", "tie"), ("b", "tie", "b", "b")]


async def test_export_records_the_policy_and_the_votes_per_pair(
    client: AsyncClient, session: AsyncSession, tmp_path: Path
) -> None:
    project = await make_project(
        session, slug="adaptive-export", raters_per_pair=3, overlap_mode="adaptive"
    )
    await make_pairs(session, project, len(VOTES))
    crowd = Crowd(client, session, project)
    raters = await crowd.join(5)
    # Rater n votes the n-th vote of every pair that still wants one, pair by pair.
    for position, rater in enumerate(raters):
        for votes in VOTES:
            if position < len(votes):
                await crowd.vote(rater, votes[position])
    assert await crowd.lease(raters[0]) is None

    options = ExportOptions(ExportFormat.TRL, AggregationOptions(), test_fraction=0.0)
    result = await service.write_folder(
        await session.connection(), project, Selection(project.id), options, tmp_path
    )
    manifest = json.loads((result.path / MANIFEST).read_text())
    assert manifest["counts"]["votes_per_pair"] == {"2": 1, "4": 2, "5": 1}
    assert manifest["counts"]["votes_read"] == 15
    assert manifest["overlap"]["policy"] == {
        "mode": "adaptive",
        "min_raters": 2,
        "max_raters": 5,
        "rule": "leader_share",
        "stop_votes": 2,
        "stop_share": 0.75,
        "fixed_k_for_comparison": 3,
    }
    # a (2 of 2), a (3 of 4), b (3 of 4) kept; a-b-a-b-tie has no majority.
    assert manifest["counts"]["kept"] == 3
    assert manifest["counts"]["dropped"] == {"no_majority": 1}
    margins = sorted(
        json.loads(line)["margin"]
        for line in (result.path / "train.jsonl").read_text().splitlines()
    )
    assert margins == [0.0, 0.0, 0.0]  # no strength scale: no margin, whatever the votes
    card = (result.path / README).read_text()
    assert "raters per pair: adaptive: 2 to 5 raters per pair" in card
    assert "votes per pair read: 2 votes: 1 pair, 4 votes: 2 pairs, 5 votes: 1 pair" in card
