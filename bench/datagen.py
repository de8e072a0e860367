"""Seeded data for the benchmarks, written with COPY so that setup stays quick.

Texts come from a pool of seeded, markdown-flavoured answers of varied length and style; a
row picks a pool entry and gets a unique suffix, so generating a million rows costs a
million string joins, not a million random texts.
"""

import hashlib
import json
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import psycopg
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from pickwise.core.embedded_pg import to_sqlalchemy_url
from pickwise.core.security import new_pseudonym, new_token, token_digest
from pickwise.models import ApiToken, Batch, Project, ProjectMember, User, UserSession

BASE_TIME = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
COPY_BLOCK = 1 << 20

# --- texts ------------------------------------------------------------------------------

# Syllables that pseudo-words are made of (one string, split once).
_SYLLABLE_TEXT = "ka lo mi ra te su no vi pa de fo gu ri sa lu me to ba ne zi ho ta ve ki du mo"
_SYLLABLES = [*_SYLLABLE_TEXT.split(), "la", "pe", "ro", "si", "na", "lin", "dor", "mar", "quin"]


def _vocabulary(rng: random.Random, size: int = 600) -> list[str]:
    words = {"".join(rng.choices(_SYLLABLES, k=rng.randint(1, 3))) for _ in range(size * 2)}
    return sorted(words)[:size]


@dataclass(frozen=True)
class Answer:
    text: str
    words: int
    headings: int
    list_items: int
    bold: int


class TextPool:
    """Seeded answers (sorted from shortest to longest) and questions."""

    def __init__(self, seed: int, size: int = 512, mean_words: int = 60) -> None:
        rng = random.Random(seed)
        self.vocabulary = _vocabulary(rng)
        answers = [self._answer(rng, mean_words) for _ in range(size)]
        self.answers = sorted(answers, key=lambda answer: answer.words)
        self.questions = [self._sentence(rng, rng.randint(6, 16))[:-1] + "?" for _ in range(size)]

    def _sentence(self, rng: random.Random, words: int) -> str:
        chosen = rng.choices(self.vocabulary, k=words)
        return chosen[0].capitalize() + " " + " ".join(chosen[1:]) + "."

    def _answer(self, rng: random.Random, mean_words: int) -> Answer:
        target = max(int(rng.expovariate(1 / mean_words)), 3)
        parts: list[str] = []
        words = headings = list_items = bold = 0
        if rng.random() < 0.2:
            parts.append("## " + self._sentence(rng, 3)[:-1])
            headings += 1
            words += 3
        while words < target:
            kind = rng.random()
            if kind < 0.15:
                items = rng.randint(2, 5)
                for _ in range(items):
                    parts.append("- " + self._sentence(rng, 5))
                list_items += items
                words += items * 5
            else:
                length = rng.randint(6, 18)
                sentence = self._sentence(rng, length)
                if rng.random() < 0.1:
                    sentence = f"**{sentence}**"
                    bold += 1
                parts.append(sentence)
                words += length
        return Answer("\n".join(parts), words, headings, list_items, bold)

    def answer(self, index: int) -> Answer:
        return self.answers[index % len(self.answers)]

    def question(self, index: int) -> str:
        return self.questions[index % len(self.questions)]


# --- COPY -------------------------------------------------------------------------------

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def cell(value: Any) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).translate(_ESCAPES)


def copy_line(row: Sequence[Any]) -> str:
    return "\t".join([cell(value) for value in row]) + "\n"


def copy_lines(rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    for row in rows:
        yield copy_line(row)


def _blocks(lines: Iterable[str]) -> Iterator[bytes]:
    parts: list[str] = []
    size = 0
    for line in lines:
        parts.append(line)
        size += len(line)
        if size >= COPY_BLOCK:
            yield "".join(parts).encode()
            parts, size = [], 0
    if parts:
        yield "".join(parts).encode()


def copy_in(
    conn: psycopg.Connection[Any],
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> int:
    """COPY rows into a table; returns how many."""
    count = 0

    def counted() -> Iterator[str]:
        nonlocal count
        for line in copy_lines(rows):
            count += 1
            yield line

    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for block in _blocks(counted()):
            copy.write(block)
    return count


def copy_file_in(
    conn: psycopg.Connection[Any], table: str, columns: Sequence[str], source: BinaryIO
) -> None:
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        while block := source.read(COPY_BLOCK):
            copy.write(block)


def write_copy_file(path: Any, rows: Iterable[Sequence[Any]]) -> int:
    count = 0
    with open(path, "wb") as out:
        for block in _blocks(copy_lines(rows)):
            out.write(block)
            count += block.count(b"\n")
    return count


def next_ids(conn: psycopg.Connection[Any], table: str) -> int:
    """The first id after the table's largest (ids are given explicitly in COPY)."""
    row = conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()
    return int(row[0]) if row else 1


def sync_sequences(conn: psycopg.Connection[Any], tables: Sequence[str]) -> None:
    """After COPY with explicit ids: move each id sequence past the largest id."""
    for table in tables:
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
        )


def fast_load(conn: psycopg.Connection[Any]) -> None:
    """Skip foreign-key triggers for this session when allowed (generated data is consistent
    by construction); without superuser rights the load is just slower."""
    try:
        conn.execute("SET session_replication_role = replica")
    except psycopg.errors.InsufficientPrivilege:
        conn.rollback()


# --- rows of the schema -----------------------------------------------------------------

PROMPT_COLUMNS = (
    "id",
    "project_id",
    "batch_id",
    "external_id",
    "system",
    "turns",
    "content_hash",
    "metadata",
)
RESPONSE_COLUMNS = ("id", "project_id", "prompt_id", "external_id", "model", "content", "metadata")
PAIR_COLUMNS = (
    "id",
    "project_id",
    "prompt_id",
    "batch_id",
    "response_a_id",
    "response_b_id",
    "is_gold",
    "gold_winner_id",
    "status",
)
SLOT_COLUMNS = (
    "id",
    "project_id",
    "pair_id",
    "slot_no",
    "state",
    "assignment_id",
    "lease_expires_at",
    "queue_pos",
)
ASSIGNMENT_COLUMNS = (
    "id",
    "project_id",
    "pair_id",
    "rater_id",
    "slot_id",
    "status",
    "left_side",
    "is_gold",
    "shown_at",
    "lease_expires_at",
    "completed_at",
)
JUDGMENT_COLUMNS = (
    "id",
    "project_id",
    "pair_id",
    "assignment_id",
    "rater_id",
    "slot_id",
    "is_gold",
    "choice",
    "criteria",
    "left_side",
    "shown_at",
    "submitted_at",
)


@dataclass
class Setup:
    """Users, project and batch made through the ORM (few rows, every default applied)."""

    project_id: int
    batch_id: int
    rater_ids: list[int]
    rater_tokens: list[str]
    admin_token: str
    slug: str
    # Each new rater's login cookie (pickwise_session), as a browser holds it after logging
    # in: the rating page's loop sends its forms with it.
    rater_cookies: list[str] = field(default_factory=list)


def make_project(
    url: str,
    *,
    slug: str,
    raters: int,
    raters_per_pair: int = 1,
    seed: int = 0,
    existing_rater_ids: Sequence[int] = (),
    **settings: Any,
) -> Setup:
    """A project with an admin, `raters` member raters (API tokens for all, and a login
    session for each new rater) and one batch; other project `settings` (e.g. adaptive
    overlap) as given."""
    rng = random.Random(seed)
    engine = create_engine(to_sqlalchemy_url(url))
    try:
        with Session(engine) as session, session.begin():
            project = Project(
                slug=slug, name=f"Benchmark {slug}", raters_per_pair=raters_per_pair, **settings
            )
            admin = _user(f"admin-{slug}", "admin")
            session.add_all([project, admin])
            session.flush()
            batch = Batch(
                project_id=project.id, filename="bench.jsonl", sha256="0" * 64, source="cli"
            )
            users = [_user(f"rater{index}-{slug}", "rater") for index in range(raters)]
            session.add_all([batch, *users])
            session.flush()
            rater_ids = [user.id for user in users] + list(existing_rater_ids)
            session.add_all(
                ProjectMember(project_id=project.id, user_id=rater_id) for rater_id in rater_ids
            )
            tokens = [f"pw_bench_{rng.getrandbits(128):032x}" for _ in range(len(users) + 1)]
            owners = [admin.id, *[user.id for user in users]]
            session.add_all(
                ApiToken(
                    token_hash=token_digest(token), prefix=token[:10], name="bench", user_id=uid
                )
                for token, uid in zip(tokens, owners, strict=True)
            )
            cookies = [new_token() for _ in users]
            session.add_all(
                UserSession(
                    token_hash=token_digest(cookie),
                    user_id=user.id,
                    csrf_token=new_token(),
                    expires_at=datetime.now(UTC) + timedelta(days=1),
                )
                for cookie, user in zip(cookies, users, strict=True)
            )
            return Setup(
                project_id=project.id,
                batch_id=batch.id,
                rater_ids=rater_ids,
                rater_tokens=tokens[1:],
                admin_token=tokens[0],
                slug=slug,
                rater_cookies=cookies,
            )
    finally:
        engine.dispose()


def _user(name: str, role: str) -> User:
    return User(
        email=f"{name}@bench.invalid",
        display_name=name,
        role=role,
        pseudonym=new_pseudonym(),
    )


@dataclass
class CorpusSpec:
    """Prompts with `responses_per_prompt` responses each and every pair of them."""

    prompts: int
    responses_per_prompt: int
    models: Sequence[str]
    seed: int = 0
    mean_words: int = 60
    # Per model: where in the pool (0 = shortest answers, 1 = longest) its answers come from.
    verbosity: Sequence[float] | None = None


@dataclass
class Corpus:
    """Ids of what was written (contiguous ranges), for the rating rows that follow."""

    first_prompt: int
    first_response: int
    first_pair: int
    prompts: int
    responses_per_prompt: int
    pairs_per_prompt: int
    # model index of each response, in response id order
    response_models: list[int] = field(default_factory=list)
    # pool entry behind each response, in response id order
    response_answers: list[int] = field(default_factory=list)

    @property
    def pairs(self) -> int:
        return self.prompts * self.pairs_per_prompt

    def pair_responses(self, pair_offset: int) -> tuple[int, int]:
        """Response offsets (a, b) of a pair, both relative to the first ids."""
        prompt, within = divmod(pair_offset, self.pairs_per_prompt)
        first, second = _COMBINATIONS[self.responses_per_prompt][within]
        base = prompt * self.responses_per_prompt
        return base + first, base + second


_COMBINATIONS = {n: [(i, j) for i in range(n) for j in range(i + 1, n)] for n in range(2, 9)}


def write_corpus(
    conn: psycopg.Connection[Any], setup: Setup, spec: CorpusSpec, pool: TextPool
) -> Corpus:
    """COPY prompts, responses and all pairs of each prompt's responses."""
    rng = random.Random(spec.seed)
    per_prompt = spec.responses_per_prompt
    corpus = Corpus(
        first_prompt=next_ids(conn, "prompts"),
        first_response=next_ids(conn, "responses"),
        first_pair=next_ids(conn, "pairs"),
        prompts=spec.prompts,
        responses_per_prompt=per_prompt,
        pairs_per_prompt=len(_COMBINATIONS[per_prompt]),
    )
    n_models = len(spec.models)
    pool_size = len(pool.answers)
    for _ in range(spec.prompts):
        for model in rng.sample(range(n_models), per_prompt):
            corpus.response_models.append(model)
            if spec.verbosity is None:
                corpus.response_answers.append(rng.randrange(pool_size))
            else:
                centre = spec.verbosity[model] * (pool_size - 1)
                spread = pool_size * 0.15
                index = int(min(max(rng.gauss(centre, spread), 0), pool_size - 1))
                corpus.response_answers.append(index)

    def prompts() -> Iterator[tuple[Any, ...]]:
        for offset in range(spec.prompts):
            turns = json.dumps([{"role": "user", "content": f"{pool.question(offset)} ({offset})"}])
            yield (
                corpus.first_prompt + offset,
                setup.project_id,
                setup.batch_id,
                f"{setup.slug}-{offset:08d}",
                None,
                turns,
                hashlib.sha256(turns.encode()).hexdigest(),
                "{}",
            )

    def responses() -> Iterator[tuple[Any, ...]]:
        for offset, (model, answer) in enumerate(
            zip(corpus.response_models, corpus.response_answers, strict=True)
        ):
            yield (
                corpus.first_response + offset,
                setup.project_id,
                corpus.first_prompt + offset // per_prompt,
                str(offset % per_prompt),
                spec.models[model],
                f"{pool.answer(answer).text}\n\n(#{offset})",
                "{}",
            )

    def pairs() -> Iterator[tuple[Any, ...]]:
        for offset in range(corpus.pairs):
            a, b = corpus.pair_responses(offset)
            yield (
                corpus.first_pair + offset,
                setup.project_id,
                corpus.first_prompt + offset // corpus.pairs_per_prompt,
                setup.batch_id,
                corpus.first_response + a,
                corpus.first_response + b,
                False,
                None,
                "active",
            )

    copy_in(conn, "prompts", PROMPT_COLUMNS, prompts())
    copy_in(conn, "responses", RESPONSE_COLUMNS, responses())
    copy_in(conn, "pairs", PAIR_COLUMNS, pairs())
    return corpus


def write_open_slots(
    conn: psycopg.Connection[Any], setup: Setup, corpus: Corpus, k: int, *, seed: int = 0
) -> int:
    """k open slots per pair, the pairs' queue in a seeded shuffled order (as a project's
    default order places them: no two pairs of one prompt next to each other when each prompt
    has one pair, as the benchmarks' corpora do)."""
    first = next_ids(conn, "pair_slots")
    project = setup.project_id
    order = list(range(corpus.pairs))
    random.Random(seed).shuffle(order)
    place = {offset: position + 1 for position, offset in enumerate(order)}
    rows = (
        (
            first + offset * k + slot,
            project,
            corpus.first_pair + offset,
            slot + 1,
            "open",
            None,
            None,
            place[offset],
        )
        for offset in range(corpus.pairs)
        for slot in range(k)
    )
    return copy_in(conn, "pair_slots", SLOT_COLUMNS, rows)


ChoiceRule = Any  # Callable[[int pair offset, random.Random], str]


def write_judgments(
    conn: psycopg.Connection[Any],
    setup: Setup,
    corpus: Corpus,
    k: int,
    choose: ChoiceRule,
    *,
    seed: int = 0,
    rationale: Callable[[int, random.Random], str | None] | None = None,
) -> int:
    """k judgments on every pair, each by a different rater, with their done slots and
    submitted assignments, as the rater loop would have left them (with `rationale`, each
    judgment gets the text it returns, or none)."""
    rng = random.Random(seed)
    raters = setup.rater_ids
    if len(raters) < k:
        raise ValueError("need at least k raters")
    first_slot = next_ids(conn, "pair_slots")
    first_assignment = next_ids(conn, "assignments")
    first_judgment = next_ids(conn, "judgments")
    plans: list[tuple[int, int, int, str, str, datetime, str | None]] = []
    # (pair offset, slot no, rater, choice, left side, shown at, rationale)
    for offset in range(corpus.pairs):
        start = rng.randrange(len(raters))
        for slot in range(k):
            shown = BASE_TIME + timedelta(seconds=offset * 0.5 + slot * 7)
            plans.append(
                (
                    offset,
                    slot + 1,
                    raters[(start + slot) % len(raters)],
                    choose(offset, rng),
                    "a" if rng.random() < 0.5 else "b",
                    shown,
                    rationale(offset, rng) if rationale is not None else None,
                )
            )
    project = setup.project_id

    def slots() -> Iterator[tuple[Any, ...]]:
        for index, (offset, slot_no, *_rest) in enumerate(plans):
            pair = corpus.first_pair + offset
            assignment = first_assignment + index
            yield (first_slot + index, project, pair, slot_no, "done", assignment, None, pair)

    def assignments() -> Iterator[tuple[Any, ...]]:
        for index, (offset, _slot, rater, _choice, left, shown, _why) in enumerate(plans):
            done = shown + timedelta(seconds=20)
            yield (
                first_assignment + index,
                project,
                corpus.first_pair + offset,
                rater,
                first_slot + index,
                "submitted",
                left,
                False,
                shown,
                shown + timedelta(minutes=10),
                done,
            )

    def judgments() -> Iterator[tuple[Any, ...]]:
        for index, (offset, _slot, rater, choice, left, shown, why) in enumerate(plans):
            extra = (why,) if rationale is not None else ()
            yield (
                first_judgment + index,
                project,
                corpus.first_pair + offset,
                first_assignment + index,
                rater,
                first_slot + index,
                False,
                choice,
                "{}",
                left,
                shown,
                shown + timedelta(seconds=20),
                *extra,
            )

    columns = (*JUDGMENT_COLUMNS, "rationale") if rationale is not None else JUDGMENT_COLUMNS
    copy_in(conn, "pair_slots", SLOT_COLUMNS, slots())
    copy_in(conn, "assignments", ASSIGNMENT_COLUMNS, assignments())
    return copy_in(conn, "judgments", columns, judgments())


def finish_load(url: str, tables: Sequence[str] = ()) -> None:
    """Sequences past the copied ids, then VACUUM ANALYZE as autovacuum eventually would."""
    all_tables = tables or (
        "prompts",
        "responses",
        "pairs",
        "pair_slots",
        "assignments",
        "judgments",
    )
    with psycopg.connect(url, autocommit=True) as conn:
        sync_sequences(conn, all_tables)
        for table in all_tables:
            conn.execute(f"VACUUM ANALYZE {table}")
