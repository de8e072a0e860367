"""Keyset cursors: where a page of the explorer ends, as an opaque string for links.

A cursor holds the sort, the last (or first) row's sort key and pair id, and the listing's
watermark (the last judgment id counted), so every page of one listing counts the same votes.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pickwise.core.errors import InvalidInput
from pickwise.vocabulary import PairSort

# (summary column, descending) per sort; ties broken by pair id in the same direction. The
# agreement sorts read columns that put pairs without votes last (models.review).
SORT_KEYS: dict[PairSort, tuple[str, bool]] = {
    PairSort.NEWEST: ("created_at", True),
    PairSort.OLDEST: ("created_at", False),
    PairSort.AGREEMENT_LOW: ("agreement_low", False),
    PairSort.AGREEMENT_HIGH: ("agreement_high", False),
    PairSort.VOTES_MOST: ("votes", True),
    PairSort.VOTES_FEWEST: ("votes", False),
}


@dataclass(frozen=True)
class Cursor:
    sort: PairSort
    key: Any  # the sort column's value: a datetime, a float or an int
    pair_id: int
    as_of: int

    def encode(self) -> str:
        key = self.key.isoformat() if isinstance(self.key, datetime) else self.key
        raw = json.dumps([self.sort.value, key, self.pair_id, self.as_of], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str, sort: PairSort, field: str) -> "Cursor":
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            sort_name, key, pair_id, as_of = json.loads(raw)
            found = PairSort(sort_name)
        except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
            raise InvalidInput("not a cursor from this listing", field=field) from exc
        if found is not sort:
            raise InvalidInput(f"this cursor belongs to the sort {found.value!r}", field=field)
        if not (isinstance(pair_id, int) and isinstance(as_of, int)):
            raise InvalidInput("not a cursor from this listing", field=field)
        return cls(sort, _key(SORT_KEYS[sort][0], key, field), pair_id, as_of)


def _key(column: str, value: Any, field: str) -> Any:
    try:
        if column == "created_at":
            return datetime.fromisoformat(value)
        if column == "votes":
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            raise TypeError(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise TypeError(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("not a cursor from this listing", field=field) from exc
