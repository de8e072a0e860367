"""Analytics computed once per change of the data they read, and served from here."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from pickwise.models.base import Base


class AnalyticsSnapshot(Base):
    """One computed report (or section with non-default parameters) of a project.

    ``watermark`` fingerprints the inputs it was computed from (judgments, exclusions and
    membership, pairs out of the queue, batches, k, quality rules, the code's version); while
    they are unchanged the snapshot is the answer.
    """

    __tablename__ = "analytics_snapshots"

    project_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    data: Mapped[dict[str, Any]]
    watermark: Mapped[dict[str, Any]]
    computed_at: Mapped[datetime]
    compute_seconds: Mapped[float] = mapped_column(Float)
    # Judgments in the project when it was computed: decides how the next one is computed.
    judgments: Mapped[int] = mapped_column(BigInteger)
