"""Shared by the security suites: the browser suites' live server and Chromium (from
tests/browser), and committed data that is emptied afterwards."""

from tests.browser.conftest import browser, chromium_path, committed_engine, live_server
from tests.tables import empty_all_tables

__all__ = ["browser", "chromium_path", "committed_engine", "empty_all_tables", "live_server"]
