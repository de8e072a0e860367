"""Which judgments an export takes, as options and as SQL."""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Selection:
    project_id: int
    batch_ids: tuple[int, ...] = field(default_factory=tuple)
    include_gold: bool = False
    # Votes of raters an admin excluded stay in the database but are left out by default.
    include_excluded_raters: bool = False

    def where(self) -> tuple[str, dict[str, Any]]:
        clauses = [
            "j.project_id = %(project_id)s",
            "pr.status <> 'removed'",
        ]
        params: dict[str, Any] = {"project_id": self.project_id}
        if not self.include_gold:
            clauses.append("NOT j.is_gold")
        if self.batch_ids:
            clauses.append("pr.batch_id = ANY(%(batch_ids)s)")
            params["batch_ids"] = list(self.batch_ids)
        if not self.include_excluded_raters:
            clauses.append(
                "NOT EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = j.project_id"
                " AND m.user_id = j.rater_id AND m.excluded)"
            )
        return " AND ".join(clauses), params
