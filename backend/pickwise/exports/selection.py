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

    def clauses(self) -> tuple[str, str, dict[str, Any]]:
        """(condition on the pairs `pr`, condition on the judgments `j`, parameters)."""
        pairs = ["pr.project_id = %(project_id)s", "pr.status <> 'removed'"]
        judgments = ["j.project_id = %(project_id)s"]
        params: dict[str, Any] = {"project_id": self.project_id}
        if not self.include_gold:
            judgments.append("NOT j.is_gold")
        if self.batch_ids:
            pairs.append("pr.batch_id = ANY(%(batch_ids)s)")
            params["batch_ids"] = list(self.batch_ids)
        if not self.include_excluded_raters:
            judgments.append(
                "NOT EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = j.project_id"
                " AND m.user_id = j.rater_id AND m.excluded)"
            )
        return " AND ".join(pairs), " AND ".join(judgments), params

    def where(self) -> tuple[str, dict[str, Any]]:
        """Both conditions, for a query that joins judgments `j` to pairs `pr`."""
        pairs, judgments, params = self.clauses()
        return f"{judgments} AND {pairs}", params
