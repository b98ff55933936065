"""Request ids, webhook metrics, health checks and the metrics scrape.

``/livez`` and ``/readyz`` are public (a load balancer or orchestrator has no account)
and say nothing but which check failed. ``/metrics`` is not: it needs the
``metrics:read`` permission installation-wide (an admin, or an API token with that scope
and no agency), since its totals span every agency; a token limited to an agency gets
404 as for anything outside its subtree.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from apiflask import APIFlask
from flask import Response, current_app, g, jsonify, request

from .. import health, logs, metrics
from ..core.access import Permission
from ..persistence import tallies
from ..services import access as access_service
from ..services import intake
from .access import principal, public, requires
from .context import services
from .urls import WEBHOOK_BLUEPRINTS

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
SCHEDULER = "sipas_scheduler"   # app.extensions key of the scheduler in an all-in-one process


def init_app(app: APIFlask) -> None:
    """Register before the access guard, so its refusals carry a request id too."""
    app.before_request(_start)
    app.after_request(_finish)
    app.teardown_request(_clear)
    for path, view in (("/livez", livez), ("/readyz", readyz), ("/metrics", scrape)):
        app.get(path, endpoint=path[1:])(app.doc(hide=True)(view))


def _start() -> None:
    presented = request.headers.get("X-Request-Id", "")
    g.request_id = presented if REQUEST_ID.fullmatch(presented) else uuid.uuid4().hex
    g.started = time.perf_counter()
    logs.clear()
    logs.request_id.set(g.request_id)


def _finish(response: Response) -> Response:
    response.headers["X-Request-Id"] = g.get("request_id", "")
    if request.blueprint in WEBHOOK_BLUEPRINTS and request.url_rule is not None:
        route = request.url_rule.rule    # "/voice/<token>/answer": the rule, never the path
        metrics.WEBHOOKS.labels(route=route, status=str(response.status_code)).inc()
        metrics.WEBHOOK_SECONDS.labels(route=route).observe(time.perf_counter() - g.get("started", 0.0))
    return response


def _clear(_exc: BaseException | None) -> None:
    logs.clear()    # gunicorn's threads serve request after request


@public
def livez() -> dict[str, str]:
    return {"status": "ok"}


@public
def readyz() -> tuple[Any, int]:
    scheduler = current_app.extensions.get(SCHEDULER)
    state = health.readiness(services().db.engine,
                             (lambda: bool(scheduler.running)) if scheduler is not None else None)
    return jsonify(state.body()), 200 if state.ok else 503


@requires(Permission.METRICS_READ)
def scrape() -> Response:
    svc = services()
    with svc.db.begin() as session:
        access_service.check(session, principal(), Permission.METRICS_READ, None)

    def read() -> dict[str, dict[tuple[str, str], int]]:
        with svc.db.begin() as session:
            return tallies.totals(session)

    def backlog() -> tuple[int, float]:
        with svc.db.autocommit() as conn:
            return intake.backlog(conn, svc.clock())

    return Response(metrics.scrape(metrics.Progress(read), metrics.Intake(backlog)), mimetype=None,
                    content_type=metrics.CONTENT_TYPE)
