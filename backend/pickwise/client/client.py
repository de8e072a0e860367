"""A small synchronous client of the pickwise HTTP API, for scripts and generation code.

    from pickwise.client import Client

    with Client("https://pickwise.example.org", token) as pw:
        project = pw.create_project("helpfulness-v2", "Helpfulness v2", raters_per_pair=3)
        pw.add_prompts(project, rows)                  # rows: dicts in the import format
        print(pw.progress(project))
        pw.download_export(project, path="trl.jsonl", format="trl")

    with Client("https://pickwise.example.org", rater_token) as pw:   # rating: one request
        pair = pw.next_pair(project)                                   # per judgment
        while pair is not None:
            pair = pw.judge(pair.assignment_id, "left").next

It depends on httpx and pydantic only: nothing of the server is imported.
"""

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any, Self

import httpx

from pickwise import __version__
from pickwise.client.errors import LineError, PickwiseAPIError
from pickwise.client.models import (
    Answered,
    ImportSummary,
    Leaderboard,
    LeasedPair,
    Progress,
    Project,
)

ProjectRef = int | str | Project
"""A project by id, by slug, or as returned by the client."""

RETRY_STATUS = frozenset({502, 503, 504})
DEFAULT_BATCH_ROWS = 5_000
DEFAULT_BATCH_BYTES = 32 * 1024 * 1024


def _error_from(response: httpx.Response, first_row: int | None = None) -> PickwiseAPIError:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if not isinstance(body, dict):
        return PickwiseAPIError(response.status_code, str(body)[:500] or response.reason_phrase)
    line_errors = []
    for item in body.get("errors") or []:
        if isinstance(item, dict):
            line = item.get("line")
            row = first_row + line - 1 if first_row is not None and line is not None else None
            line_errors.append(LineError(line, item.get("field"), str(item.get("message")), row))
        else:
            line_errors.append(LineError(None, None, str(item)))
    return PickwiseAPIError(
        response.status_code,
        str(body.get("detail", response.reason_phrase)),
        error=body.get("error"),
        line_errors=line_errors,
        error_count=int(body.get("error_count") or len(line_errors)),
        body=body,
    )


class _Batch:
    """Rows serialised as JSONL, kept in memory until sent."""

    def __init__(self, first_row: int) -> None:
        self.first_row = first_row
        self.lines: list[bytes] = []
        self.size = 0

    def add(self, line: bytes) -> None:
        self.lines.append(line)
        self.size += len(line)

    @property
    def rows(self) -> int:
        return len(self.lines)


class Client:
    """Talks to one pickwise server with one API token (an admin's, to import and export).

    `transport` replaces the network (tests pass one that calls the app directly). Requests
    that are safe to repeat (reads, and imports, which the server makes idempotent) are
    retried on 502/503/504 and on connection errors, `retries` times with backoff.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 120.0,
        retries: int = 3,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": f"pickwise-client/{__version__}",
            },
            timeout=timeout,
            transport=transport,
        )
        self._retries = retries
        self._backoff = backoff
        self._project_ids: dict[str, int] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- plumbing ---------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        retry: bool,
        first_row: int | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        attempts = 1 + (self._retries if retry else 0)
        for attempt in range(1, attempts + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt == attempts:
                    raise PickwiseAPIError(None, f"cannot reach the server: {exc}") from exc
            else:
                if response.status_code < 400:
                    return response
                if response.status_code not in RETRY_STATUS or attempt == attempts:
                    raise _error_from(response, first_row)
            time.sleep(self._backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _json(self, method: str, path: str, *, retry: bool = True, **kwargs: Any) -> Any:
        return self._send(method, path, retry=retry, **kwargs).json()

    def project_id(self, project: ProjectRef) -> int:
        if isinstance(project, Project):
            return project.id
        if isinstance(project, int):
            return project
        if project not in self._project_ids:
            for found in self.list_projects():
                self._project_ids[found.slug] = found.id
        if project not in self._project_ids:
            raise PickwiseAPIError(404, f"project {project!r}: no such project", error="NotFound")
        return self._project_ids[project]

    # --- projects ---------------------------------------------------------------------------

    def list_projects(self) -> list[Project]:
        return [Project.model_validate(item) for item in self._json("GET", "/api/v1/projects")]

    def get_project(self, project: ProjectRef) -> Project:
        return Project.model_validate(
            self._json("GET", f"/api/v1/projects/{self.project_id(project)}")
        )

    def create_project(self, slug: str, name: str, **settings: Any) -> Project:
        """`settings` as in the API: raters_per_pair, allow_tie, strength_scale, gold_rate, …"""
        body = {"slug": slug, "name": name, **settings}
        created = Project.model_validate(
            self._json("POST", "/api/v1/projects", json=body, retry=False)
        )
        self._project_ids[created.slug] = created.id
        return created

    # --- data in ----------------------------------------------------------------------------

    def _batches(
        self, rows: Iterable[Mapping[str, Any]], batch_rows: int, batch_bytes: int
    ) -> Iterator[_Batch]:
        batch = _Batch(0)
        for index, row in enumerate(rows):
            try:
                text = json.dumps(row, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"row {index} cannot be written as JSON: {exc}") from exc
            line = text.encode("utf-8") + b"\n"
            if batch.rows and (batch.rows >= batch_rows or batch.size + len(line) > batch_bytes):
                yield batch
                batch = _Batch(index)
            batch.add(line)
        if batch.rows:
            yield batch

    def add_prompts(
        self,
        project: ProjectRef,
        rows: Iterable[Mapping[str, Any]],
        *,
        filename: str = "client.jsonl",
        batch_rows: int = DEFAULT_BATCH_ROWS,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
    ) -> list[ImportSummary]:
        """Import rows (dicts in the JSONL import format) as one batch per `batch_rows` rows
        or `batch_bytes` bytes, whichever comes first; `rows` may be a generator.

        Each batch is all or nothing, and importing the same rows again adds nothing, so after
        an error (`PickwiseAPIError`: `line_errors` name the `row`; `imported` lists the
        batches already stored) fix the rows and call again with all of them. Memory holds
        at most two batches.
        """
        if batch_rows < 1 or batch_bytes < 1:
            raise ValueError("batch_rows and batch_bytes must be at least 1")
        project_id = self.project_id(project)
        stem, suffix = PurePosixPath(filename).stem, PurePosixPath(filename).suffix or ".jsonl"
        batches = self._batches(rows, batch_rows, batch_bytes)
        current = next(batches, None)
        upcoming = next(batches, None)
        several = upcoming is not None
        imported: list[ImportSummary] = []
        part = 1
        while current is not None:
            name = f"{stem}.part{part}{suffix}" if several else filename
            try:
                response = self._send(
                    "POST",
                    f"/api/v1/projects/{project_id}/batches",
                    retry=True,
                    first_row=current.first_row,
                    params={"filename": name, "format": "jsonl", "source": "client"},
                    content=b"".join(current.lines),
                    headers={"Content-Type": "application/x-ndjson"},
                )
            except PickwiseAPIError as exc:
                exc.imported = imported
                raise
            imported.append(
                ImportSummary.model_validate(
                    {**response.json(), "filename": name, "rows": current.rows}
                )
            )
            current, upcoming = upcoming, next(batches, None) if upcoming is not None else None
            part += 1
        return imported

    # --- progress and results ---------------------------------------------------------------

    def progress(self, project: ProjectRef) -> Progress:
        path = f"/api/v1/projects/{self.project_id(project)}/analytics/progress"
        return Progress.model_validate(self._json("GET", path))

    def wait_until_complete(
        self,
        project: ProjectRef,
        *,
        poll_seconds: float = 30.0,
        timeout: float | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Progress:
        """Polls progress until every active pair has its judgments; TimeoutError after
        `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            current = self.progress(project)
            if on_progress is not None:
                on_progress(current)
            if current.complete:
                return current
            if deadline is not None and time.monotonic() + poll_seconds > deadline:
                raise TimeoutError(f"not complete after {timeout} s: {current}")
            time.sleep(poll_seconds)

    def download_export(
        self,
        project: ProjectRef,
        *,
        path: str | os.PathLike[str],
        format: str = "trl",
        **options: Any,
    ) -> Path:
        """Stream an export (NDJSON, one row a line) to `path`; returns the path.

        `options` as in the API: aggregation, min_votes, min_agreement, test_fraction, seed,
        batch_id (a list), include_gold, include_excluded, split ("all", "train", "test").
        The file appears only once complete (it is written next to it, then renamed).
        """
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        params = {"format": format, **{k: v for k, v in options.items() if v is not None}}
        url = f"/api/v1/projects/{self.project_id(project)}/export"
        try:
            with self._http.stream("GET", url, params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error_from(response)
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
        except httpx.TransportError as exc:
            partial.unlink(missing_ok=True)
            raise PickwiseAPIError(None, f"the download broke off: {exc}") from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(target)
        return target

    def leaderboard(
        self, project: ProjectRef, *, bootstrap_rounds: int | None = None, seed: int | None = None
    ) -> Leaderboard:
        """The Bradley-Terry model leaderboard (`ready` False until there are enough votes)."""
        params = {
            key: value
            for key, value in (("bootstrap_rounds", bootstrap_rounds), ("seed", seed))
            if value is not None
        }
        path = f"/api/v1/projects/{self.project_id(project)}/analytics/leaderboard"
        try:
            body = self._json("GET", path, params=params)
        except PickwiseAPIError as exc:
            if exc.status_code == 404 and exc.error is None:
                # A route-level 404 (no "error" field): the server predates the leaderboard.
                raise PickwiseAPIError(
                    404, "this server has no leaderboard endpoint; upgrade pickwise"
                ) from exc
            raise
        return Leaderboard.model_validate(body)

    # --- rating ---------------------------------------------------------------------------

    def next_pair(self, project: ProjectRef) -> LeasedPair | None:
        """The rater's leased pair (the same one while the lease runs), or None when no
        work is left for them."""
        body = self._json("GET", f"/api/v1/projects/{self.project_id(project)}/next")
        return None if body.get("assignment_id") is None else LeasedPair.model_validate(body)

    def judge(
        self,
        assignment_id: int,
        choice: str,
        *,
        strength: int | None = None,
        rationale: str | None = None,
        criteria: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Answered:
        """Stores a choice as the rater saw it ("left", "right", "tie", "both_bad") and
        returns it with the rater's next pair, in one request (`?next=true`). Retried on
        502/503/504 with one Idempotency-Key (made here unless given), so it is stored once."""
        body: dict[str, Any] = {"choice": choice}
        for name, value in (("strength", strength), ("rationale", rationale)):
            if value is not None:
                body[name] = value
        if criteria:
            body["criteria"] = dict(criteria)
        return self._answer(assignment_id, "judgment", body, idempotency_key)

    def skip(
        self, assignment_id: int, reason: str, *, idempotency_key: str | None = None
    ) -> Answered:
        """Gives the pair back ("cant_judge", "needs_expertise", "broken_content"); returns
        the rater's next pair with it."""
        return self._answer(assignment_id, "skip", {"reason": reason}, idempotency_key)

    def flag(
        self, assignment_id: int, reason: str, note: str = "", *, idempotency_key: str | None = None
    ) -> Answered:
        """Takes the pair out of everyone's queue for an admin to look at ("harmful",
        "personal_data", "other"); returns the rater's next pair with it."""
        body = {"reason": reason, "note": note}
        return self._answer(assignment_id, "flag", body, idempotency_key)

    def _answer(
        self, assignment_id: int, action: str, body: dict[str, Any], key: str | None
    ) -> Answered:
        headers = {"Idempotency-Key": key or uuid.uuid4().hex}
        path = f"/api/v1/assignments/{assignment_id}/{action}"
        answer = self._json("POST", path, params={"next": "true"}, json=body, headers=headers)
        failed = answer.get("next_error")
        if failed is not None:
            # Stored; only the next lease failed: ask for it (a refusal raises here).
            answer["next"] = self._json("GET", f"/api/v1/projects/{failed['project_id']}/next")
        next_pair = answer.get("next")
        if next_pair is not None and next_pair.get("assignment_id") is None:
            answer["next"] = None
        return Answered.model_validate(answer)
