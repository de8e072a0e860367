"""Gunicorn settings for production (the Dockerfile's command):

    gunicorn -c deploy/gunicorn.conf.py 'pickwise.app:create_app()'

Tuned through the environment: WEB_CONCURRENCY (worker processes, default 2), PORT (8000),
FORWARDED_ALLOW_IPS (whose X-Forwarded-* headers to trust, default "*": only the reverse
proxy can reach the app port), LOG_LEVEL (INFO) and PROMETHEUS_MULTIPROC_DIR (metrics
summed across workers). Command-line flags override anything here.
"""

import os
from pathlib import Path
from typing import Any

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "uvicorn_worker.UvicornWorker"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*")
# Longer than nginx's upstream keepalive_timeout, so nginx never reuses a closed connection.
keepalive = 75
timeout = 60
graceful_timeout = 30

# JSON logs with secrets removed, from gunicorn itself too; the app writes the access log.
logconfig_dict = {
    "root": {"level": os.environ.get("LOG_LEVEL", "INFO").upper(), "handlers": ["json"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["json"], "propagate": False},
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
    },
    "handlers": {"json": {"class": "pickwise.core.logging.StderrHandler"}},
}


def on_starting(server: Any) -> None:
    """Counters from a previous run must not be added to this one's."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for stale in Path(folder).glob("*.db"):
            stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
