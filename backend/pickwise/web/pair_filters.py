"""The explorer's filter as it travels in URLs and forms: read back (with the problems named
per field), written into links, and the one-line notices curation actions leave behind."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from fastapi import Request
from pydantic import ValidationError

from pickwise.review.schemas import PairFilter
from pickwise.vocabulary import CurationAction, PairSort
from pickwise.web.forms import field_errors

LIST_FIELDS = ("batch", "status")
FILTER_LABELS = {
    "batch": "Batch",
    "status": "Status",
    "model": "Model",
    "versus": "Against",
    "agreement_max": "Agreement at most",
    "tie": "Tie votes",
    "both_bad": "Both-bad votes",
    "flagged": "Open flags",
    "gold": "Gold",
    "rationale": "Rationales",
    "rater": "Voted by",
    "created_from": "Created from",
    "created_to": "Created to",
    "q": "Search",
    "sort": "PairSort",
    "after": "Page",
    "before": "Page",
}


class MultiParams(Protocol):
    def getlist(self, key: str) -> list[Any]: ...

    def __contains__(self, key: object) -> bool: ...


@dataclass(frozen=True)
class Listing:
    """Which listing a page belongs to: its filter, sort and (for a pair's previous / next)
    the watermark of the votes it counts."""

    pairs: PairFilter
    sort: PairSort
    as_of: int | None
    problems: dict[str, str]

    def params(self, **extra: Any) -> list[tuple[str, str]]:
        params = [*self.pairs.as_params()]
        if self.sort is not PairSort.NEWEST:
            params.append(("sort", self.sort.value))
        params += [(name, str(value)) for name, value in extra.items() if value is not None]
        return params

    def active_filters(self, fixed: Sequence[str] = ()) -> int:
        """How many filter fields narrow the listing (several statuses count once; the sort
        is no filter); `fixed` names fields the page sets itself, such as a rater's own page."""
        return len({name for name, _ in self.pairs.as_params() if name not in fixed})

    def query(self, **extra: Any) -> str:
        params = self.params(**extra)
        return "?" + urlencode(params) if params else ""


def read_listing(params: MultiParams) -> Listing:
    """Filter, sort and watermark from query parameters or a form; problems by field."""
    problems: dict[str, str] = {}
    data: dict[str, Any] = {}
    for name in PairFilter.model_fields:
        values = [value for value in params.getlist(name) if isinstance(value, str)]
        if values:
            data[name] = values if name in LIST_FIELDS else values[-1]
    pairs = _valid_part(data, problems)
    sort = PairSort.NEWEST
    chosen = _last(params, "sort")
    if chosen:
        try:
            sort = PairSort(chosen)
        except ValueError:
            problems["sort"] = f"unknown sort {chosen!r}"
    as_of = _last(params, "as_of")
    return Listing(pairs, sort, int(as_of) if as_of and as_of.isdigit() else None, problems)


def _valid_part(data: dict[str, Any], problems: dict[str, str]) -> PairFilter:
    """The filter from the values that pass; each one that does not is named in `problems`
    (a problem between fields shows up once the fields themselves pass)."""
    for _ in range(len(data) + 1):
        try:
            return PairFilter.model_validate(data)
        except ValidationError as exc:
            found = field_errors(exc)
            problems.update(found)
            data = {name: value for name, value in data.items() if name not in found}
    return PairFilter()


def _last(params: MultiParams, name: str) -> str | None:
    values = [value for value in params.getlist(name) if isinstance(value, str)]
    return values[-1] if values else None


def path_for(request: Request, route: str, **params: Any) -> str:
    return str(request.app.url_path_for(route, **{k: str(v) for k, v in params.items()}))


ACTION_NOTICES = {
    CurationAction.EXCLUDE: "{changed:,} of {selected:,} pairs excluded from exports.",
    CurationAction.INCLUDE: "{changed:,} of {selected:,} pairs included in exports again.",
    CurationAction.REQUEST_VOTES: "{changed:,} of {selected:,} pairs now ask for more votes.",
    CurationAction.MAKE_GOLD: "{changed:,} of {selected:,} pairs made gold.",
    CurationAction.RESOLVE_FLAGS: "Flags of {changed:,} of {selected:,} pairs resolved.",
}


def action_notice(query: Mapping[str, str]) -> str | None:
    """The notice a finished action's redirect asks for: fixed words and two numbers."""
    try:
        action = CurationAction(query.get("done", ""))
        changed, selected = int(query.get("changed", "")), int(query.get("selected", ""))
    except ValueError:
        return None
    return ACTION_NOTICES[action].format(changed=changed, selected=selected)


def done_params(action: CurationAction, changed: int, selected: int) -> Sequence[tuple[str, str]]:
    return [("done", action.value), ("changed", str(changed)), ("selected", str(selected))]
