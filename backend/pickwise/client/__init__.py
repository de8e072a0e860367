"""Python client of the pickwise API: `from pickwise.client import Client`. See docs/client.md."""

from pickwise.client.client import Client, ProjectRef
from pickwise.client.errors import LineError, PickwiseAPIError
from pickwise.client.models import ImportSummary, Leaderboard, ModelScore, Progress, Project

__all__ = [
    "Client",
    "ImportSummary",
    "Leaderboard",
    "LineError",
    "ModelScore",
    "PickwiseAPIError",
    "Progress",
    "Project",
    "ProjectRef",
]
