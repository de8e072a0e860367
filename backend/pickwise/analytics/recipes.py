"""The analytics snapshots a project has: the whole report (the dashboard, and every section
of the API with its default parameters), and the leaderboard and preferences asked for with
other parameters, each kept under its own key."""

from pickwise.analytics import service
from pickwise.analytics.schemas import LeaderboardRead, PreferencesRead, ReportRead
from pickwise.analytics.snapshots import Recipe

REPORT = Recipe("report", ReportRead, service.report, keep=service.keep_vote_weights)


def leaderboard(bootstrap_rounds: int, seed: int) -> tuple[Recipe, str | None]:
    """The recipe and the section of it that answers; the report's own when the parameters
    are its defaults."""
    if (bootstrap_rounds, seed) == (service.BOOTSTRAP_ROUNDS, 0):
        return REPORT, "leaderboard"
    recipe = Recipe(
        f"leaderboard?bootstrap_rounds={bootstrap_rounds}&seed={seed}",
        LeaderboardRead,
        lambda connection, project: service.leaderboard(
            connection, project.id, bootstrap_rounds=bootstrap_rounds, seed=seed
        ),
    )
    return recipe, None


def preferences(batch_id: int | None, rater_id: int | None) -> tuple[Recipe, str | None]:
    if batch_id is None and rater_id is None:
        return REPORT, "preferences"
    recipe = Recipe(
        f"preferences?batch_id={batch_id or ''}&rater_id={rater_id or ''}",
        PreferencesRead,
        lambda connection, project: service.preferences(
            connection, project.id, batch_id=batch_id, rater_id=rater_id
        ),
    )
    return recipe, None
