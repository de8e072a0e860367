"""Python client of the pickwise API: `from pickwise.client import Client`. See docs/client.md."""

from pickwise.client.client import Client, ProjectRef
from pickwise.client.errors import LineError, PickwiseAPIError
from pickwise.client.models import (
    Answered,
    ImportSummary,
    Leaderboard,
    LeasedPair,
    ModelScore,
    Progress,
    Project,
)

__all__ = [
    "Answered",
    "Client",
    "ImportSummary",
    "Leaderboard",
    "LeasedPair",
    "LineError",
    "ModelScore",
    "PickwiseAPIError",
    "Progress",
    "Project",
    "ProjectRef",
]
