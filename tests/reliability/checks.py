"""What the database holds after a run, checked against what the clients saw."""

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg

from pickwise.core.embedded_pg import to_libpq_url
from pickwise.overlap.rules import OVERLAP_SETTINGS, OverlapPolicy, Vote
from tests.overlap.invariants import rule_problems
from tests.reliability.population import Population
from tests.reliability.raters import Ledger


@dataclass(frozen=True)
class Figures:
    raters: int
    pairs: int
    judgments_stored: int
    acknowledged: int
    acknowledged_after_retries: int
    given_up: int
    given_up_but_stored: int
    refused_409: int
    requests: int
    answers_503: int
    short_timeouts: int
    cut_connections: int
    hangs: int
    lost: int
    duplicated: int
    pairs_over_k: int
    pairs_short_of_k: int  # adaptive: of the minimum
    # Adaptive overlap: pairs whose votes are not what the rule lets through.
    pairs_breaking_the_rule: int
    # Slots still leased, at the end, to raters who walked away (they return on expiry).
    leases_held_by_departed: int
    raters_stopped: dict[str, int] = field(default_factory=dict)

    def report(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in asdict(self).items())

    def save(self, path: Path, **extra: Any) -> None:
        path.write_text(json.dumps({**asdict(self), **extra}, indent=2) + "\n")


@dataclass(frozen=True)
class Outcome:
    figures: Figures
    # Every guarantee the run broke, with examples; empty when all held.
    problems: list[str]


def check(database_url: str, population: Population, ledger: Ledger, *, drained: bool) -> Outcome:
    """The guarantees, checked on the database against the clients' ledger:

    - every acknowledged judgment (a 201 the client saw) is stored, once, with that id;
    - a submit the client gave up on is stored once or not at all;
    - nothing is stored that no client sent, no (pair, rater) or assignment twice;
    - no pair holds more than k judgments; when the project was `drained`, every slot is
      judged or still leased to a rater who walked away (that lease comes back on expiry);
    - no idempotency key was committed without its answer;
    - no 5xx but a proper 503, and no request hung.
    - adaptive overlap: every pair's votes are what the rule lets through (never more, never
      one left unsettled without a slot open for more), and no pair exceeds the maximum.
    """
    with psycopg.connect(to_libpq_url(database_url)) as conn:
        judgments = conn.execute(
            "SELECT id, assignment_id, pair_id, rater_id FROM judgments WHERE project_id = %s",
            (population.project_id,),
        ).fetchall()
        policy = _policy(conn, population.project_id)
        choices = conn.execute(
            "SELECT pair_id, choice FROM judgments WHERE project_id = %s AND NOT is_gold "
            "ORDER BY id",
            (population.project_id,),
        ).fetchall()
        open_slots = conn.execute(
            "SELECT s.pair_id, a.rater_id FROM pair_slots s "
            "LEFT JOIN assignments a ON a.id = s.assignment_id AND a.status = 'leased' "
            "WHERE s.project_id = %s AND s.state <> 'done'",
            (population.project_id,),
        ).fetchall()
        keys = {
            (user_id, key): (status_code, body)
            for user_id, key, status_code, body in conn.execute(
                "SELECT user_id, key, status_code, response_body FROM idempotency_keys"
            )
        }
    problems: list[str] = []

    def expect(ok: bool, problem: str, examples: Any = None) -> None:
        if not ok:
            problems.append(f"{problem}: {examples!r}"[:2_000] if examples else problem)

    by_assignment = Counter(assignment_id for _, assignment_id, _, _ in judgments)
    by_rater_pair = Counter((pair_id, rater_id) for _, _, pair_id, rater_id in judgments)
    judgment_of = {assignment_id: id_ for id_, assignment_id, _, _ in judgments}

    acknowledged = ledger.of("acknowledged")
    lost = [s for s in acknowledged if judgment_of.get(s.assignment_id) != s.judgment_id]
    expect(not lost, "acknowledged but not stored as acknowledged", lost[:5])
    acknowledged_ids = Counter(s.assignment_id for s in acknowledged)
    twice: list[object] = [a for a, n in by_assignment.items() if n > 1]
    twice += [pair_rater for pair_rater, n in by_rater_pair.items() if n > 1]
    twice += [a for a, n in acknowledged_ids.items() if n > 1]
    expect(not twice, "stored or acknowledged twice", twice[:5])

    given_up_stored = 0
    for s in ledger.of("given_up"):
        answer = keys.get((s.rater_id, s.key))
        if answer is None:
            continue
        status_code, body = answer
        stored = status_code == 201 and judgment_of.get(s.assignment_id) == body["judgment_id"]
        expect(stored or status_code == 409, "a given-up submit kept a strange answer", answer)
        given_up_stored += stored
    unanswered = [k for k, (status_code, _) in keys.items() if status_code == 0]
    expect(not unanswered, "idempotency keys committed without an answer", unanswered[:5])

    sent_for = {s.assignment_id for s in ledger.submissions}
    phantoms = [a for a in by_assignment if a not in sent_for]
    expect(not phantoms, "judgments no client sent", phantoms[:5])

    per_pair = Counter(pair_id for _, _, pair_id, _ in judgments)
    k = policy.most_votes
    over_k = {p: n for p, n in per_pair.items() if n > k}
    expect(not over_k, "pairs with more than k (adaptive: the maximum) judgments", over_k)
    least = policy.min_raters if policy.adaptive else k
    short = {p: per_pair[p] for p in population.pair_ids if per_pair[p] < least}
    breaking: list[str] = []
    if policy.adaptive:
        votes: dict[int, list[Vote]] = {pair_id: [] for pair_id in population.pair_ids}
        for pair_id, choice in choices:
            votes[pair_id].append(Vote(choice))
        still_open = {pair_id for pair_id, _ in open_slots}
        breaking = rule_problems(policy, votes, open_pairs=still_open)
        expect(not breaking, "pairs whose votes break the stopping rule", breaking[:5])
    held_by_departed = [(p, r) for p, r in open_slots if r in ledger.walked_away]
    if drained:
        stranded = [(p, r) for p, r in open_slots if r not in ledger.walked_away]
        expect(not stranded, "work left undone that no departed rater holds", stranded[:5])

    expect(not ledger.unexpected, "unexpected answers", ledger.unexpected[:5])
    expect(ledger.hangs == 0, f"{ledger.hangs} requests hung past the client timeout")

    figures = Figures(
        raters=len(population.raters),
        pairs=len(population.pair_ids),
        judgments_stored=len(judgments),
        acknowledged=len(acknowledged),
        acknowledged_after_retries=sum(1 for s in acknowledged if s.retries),
        given_up=len(ledger.of("given_up")),
        given_up_but_stored=given_up_stored,
        refused_409=len(ledger.of("refused")),
        requests=sum(ledger.statuses.values())
        + ledger.short_timeouts
        + ledger.cut_connections
        + ledger.hangs,
        answers_503=ledger.statuses[503],
        short_timeouts=ledger.short_timeouts,
        cut_connections=ledger.cut_connections,
        hangs=ledger.hangs,
        lost=len(lost),
        duplicated=len(twice),
        pairs_over_k=len(over_k),
        pairs_short_of_k=len(short),
        pairs_breaking_the_rule=len(breaking),
        leases_held_by_departed=len(held_by_departed),
        raters_stopped=dict(ledger.stops),
    )
    return Outcome(figures, problems)


def _policy(conn: psycopg.Connection[Any], project_id: int) -> OverlapPolicy:
    """The project's overlap policy, read as the app reads it."""
    columns = ["raters_per_pair", *OVERLAP_SETTINGS]
    row = conn.execute(
        f"SELECT {', '.join(columns)} FROM projects WHERE id = %s", (project_id,)
    ).fetchone()
    assert row is not None
    return OverlapPolicy.of(SimpleNamespace(**dict(zip(columns, row, strict=True))))


def counts(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(to_libpq_url(database_url)) as conn:
        return conn.execute(sql, params).fetchall()
