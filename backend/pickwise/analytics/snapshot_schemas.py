"""The analytics answers as served from a snapshot: today's shapes plus ``snapshot``, which
says when they were computed and what has happened since."""

from datetime import datetime

from pydantic import BaseModel, Field

from pickwise.analytics.schemas import (
    AgreementRead,
    LeaderboardRead,
    PreferencesRead,
    ProgressRead,
    RatersRead,
    TimelineRead,
)


class SnapshotInfo(BaseModel):
    computed_at: datetime = Field(description="When the data these figures come from was read.")
    compute_seconds: float = Field(description="How long computing them took.")
    votes_since: int = Field(description="Judgments stored since then, not yet counted here.")
    fresh: bool = Field(
        description="Nothing these figures depend on changed since (votes, exclusions, "
        "members, flagged or removed pairs, batches, k, quality rules)."
    )
    refreshing: bool = Field(description="A recomputation is under way.")


class ProgressSnapshot(ProgressRead):
    snapshot: SnapshotInfo


class TimelineSnapshot(TimelineRead):
    snapshot: SnapshotInfo


class RatersSnapshot(RatersRead):
    snapshot: SnapshotInfo


class AgreementSnapshot(AgreementRead):
    snapshot: SnapshotInfo


class LeaderboardSnapshot(LeaderboardRead):
    snapshot: SnapshotInfo


class PreferencesSnapshot(PreferencesRead):
    snapshot: SnapshotInfo
