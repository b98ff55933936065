"""gunicorn settings for the web processes: ``gunicorn -c python:ivr_service.gunicorn_conf …``.

Only what the service needs from gunicorn's hooks; workers, threads and the bind address
stay on the command line (see the Procfile)."""

from __future__ import annotations

from typing import Any

from ivr_service import metrics


def child_exit(server: Any, worker: Any) -> None:
    """A web process ended: its live samples leave the metrics (its counters stay)."""
    metrics.mark_process_dead(worker.pid)
