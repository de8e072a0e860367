"""Review pages read rater statistics through the analytics' own read-only connection; here,
as in the analytics tests, they read through the test's connection, so they see the test's
uncommitted data."""

from tests.analytics_service.conftest import app

__all__ = ["app"]
