"""The demo, the worker and the all-in-one server."""

from __future__ import annotations

import logging
import secrets
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from werkzeug.serving import make_server

from .. import health
from ..core.access import TOKEN_SCOPES, Grant, Role
from ..core.sampling import SampleRule
from ..services import access, audit, campaigns, frames, programmes, transactions
from ..settings import PROJECT_ROOT
from ..web.observability import SCHEDULER
from . import base as cli_base
from .base import (
    CLI_ACTOR,
    cli,
)

DEMO_FRAME = PROJECT_ROOT / "config" / "demo" / "transactions.csv"
DEMO_AGENCY = ("DEMO-STNMT", "Sở Tài nguyên và Môi trường (demo)")
# The demo calls simulated citizens only, so it may declare an always-open window and
# fast retries; real campaigns keep the Decree 91 defaults.
DEMO_WINDOW: dict[str, Any] = {"weekdays": list(range(7)), "parts": [["00:00", "23:59:59.999999"]],
                               "public_holidays": None}
DEMO_RETRY: dict[str, Any] = {"max_attempts": 3, "delays": {"busy": 1, "no_answer": 1, "failed": 1, "machine": 1,
                                                            "partial": 1, "break_off": 1, "canceled": 1},
                              "min_gap_s": 0}  # simulated citizens: no 24 h per-number cap
DEMO_CALLS_PER_SECOND = 100.0
DEMO_TRANSACTIONS = 40
DEMO_PROCEDURES = (("Đất đai", "Cấp giấy chứng nhận quyền sử dụng đất"),
                   ("Môi trường", "Cấp giấy phép môi trường"),
                   ("Tài nguyên nước", "Cấp giấy phép khai thác nước dưới đất"))


# Commands run by whoever can reach the service's configuration and database.


def load_demo(app: Any, frame: Path = DEMO_FRAME, n: int = 200, seed: int = 2024) -> int:
    """Create the demo agency and a running demo campaign of ``n`` contacts sampled from the shipped frame."""
    svc = app.extensions["sipas"]
    now = svc.clock()
    with svc.db.begin() as session:
        agency = campaigns.create_agency(session, f"{DEMO_AGENCY[0]}-{now:%Y%m%d%H%M%S%f}", DEMO_AGENCY[1], now)
        campaign = campaigns.create_campaign(
            session, svc.registry, agency_id=agency.id, name=f"Demo {now:%Y-%m-%d %H:%M}",
            questionnaire="sipas-2024", now=now, timezone=svc.settings.timezone, window=DEMO_WINDOW,
            retry=DEMO_RETRY, calls_per_second=DEMO_CALLS_PER_SECOND)
        frames.import_and_sample(session, campaign, frame, SampleRule("fixed", n), seed, now)
        campaigns.transition(session, campaign.id, "start", now)
        return campaign.id


def load_demo_programme(app: Any, agency_code: str, count: int = DEMO_TRANSACTIONS) -> tuple[int, dict[str, int]]:
    """A post-transaction programme for the demo agency, fed ``count`` dossiers
    returned in the last hour, as a one-stop-shop system would report them; returns the
    programme and the feed's decisions. Invitations go out at once (no delay, always-open
    window: simulated citizens only) and simulated citizens open the link and answer."""
    svc = app.extensions["sipas"]
    now = svc.clock()
    with svc.db.begin() as session:
        agency = next(a for a in campaigns.list_agencies(session) if a.code == agency_code)
        programme = programmes.create_programme(
            session, svc.registry, agency_id=agency.id, name="Khảo sát sau giao dịch (demo)", now=now,
            default_host=svc.settings.survey_base_url or svc.settings.public_base_url,
            share_mode="fixed", share=0.8, delay_minutes=0, reminder_hours=None,
            window={**DEMO_WINDOW, "timezone": svc.settings.timezone}, timezone=svc.settings.timezone)
        records = [transactions.Record(   # Vinaphone-style numbers (091…), different on every run
            agency=agency_code, code=f"DEMO-{now:%y%m%d}-{i:04d}",
            phone=f"091{(now.microsecond + i * 7919) % 10**7:07d}",
            returned_at=now - timedelta(minutes=count - i), field=DEMO_PROCEDURES[i % 3][0],
            procedure=DEMO_PROCEDURES[i % 3][1]) for i in range(count)]
        reported = transactions.report(session, now, records, source="api", actor=CLI_ACTOR)
        return programme.id, reported.decisions


DEMO_ADMIN = "demo-admin"


def demo_admin(app: Any) -> tuple[str, str]:
    """An installation-wide admin for the demo with a fresh password, and a fresh API token."""
    svc = app.extensions["sipas"]
    now = svc.clock()
    password = secrets.token_urlsafe(12)
    with svc.db.begin() as session:
        user = access.find_user(session, DEMO_ADMIN)
        if user is None:
            user = access.create_user(session, DEMO_ADMIN, password, now, "Quản trị demo",
                                      grants=[Grant(Role.ADMIN, None)])
        else:
            access.set_password(session, user, password)
        issued = access.create_token(session, "demo", TOKEN_SCOPES, None, now, created_by=user.id)
        audit.record(session, CLI_ACTOR, "demo_admin_reset", now, target=f"user:{user.id}")
    return password, issued.secret


@cli.command("demo")
def demo() -> None:
    """Load the demo agency and transaction list, sample it and start the campaign; print
    how to sign in."""
    app = cli_base.build_app()
    campaign_id = load_demo(app)
    with app.extensions["sipas"].db.begin() as session:
        agency_code = campaigns.get_campaign(session, campaign_id).agency.code
    programme_id, decisions = load_demo_programme(app, agency_code)
    password, token = demo_admin(app)
    base = app.extensions["sipas"].settings.public_base_url
    click.echo(f"demo campaign {campaign_id} is running")
    click.echo(f"demo post-transaction programme {programme_id}: {DEMO_TRANSACTIONS} dossiers reported "
               f"({', '.join(f'{n} {d}' for d, n in sorted(decisions.items()))}); the invitations go out now")
    click.echo(f"operator console: open {base}/ and sign in as {DEMO_ADMIN} / {password}")
    click.echo(f"  (the campaign's live monitor: {base}/campaigns/{campaign_id})")
    click.echo(f"or call the API: curl -H 'Authorization: Bearer {token}' "
               f"{base}/api/v1/campaigns/{campaign_id}/progress")




@cli.command("worker")
def worker() -> None:
    """Run a worker process (dispatch and housekeeping) until interrupted."""
    from ..worker import Worker

    app = cli_base.build_app()
    runner = Worker(app)
    scheduler = runner.scheduler(blocking=True)
    port = app.extensions["sipas"].settings.worker_health_port
    server = None
    if port:
        server = health.serve_in_thread(health.wsgi_app(app.extensions["sipas"].db.engine,
                                                        lambda: bool(scheduler.running)), port)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if server is not None:
            server.shutdown()
        runner.close()


@cli.command("serve")
@click.option("--exit-when-done", is_flag=True, help="Stop once no campaign is running and all are exported.")
def serve(exit_when_done: bool) -> None:
    """All-in-one: web server and worker in one process (the embedded default)."""
    from ..worker import Worker

    app = cli_base.build_app()
    settings = app.extensions["sipas"].settings
    if settings.log_level.upper() != "DEBUG":
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per webhook is noise
    base = urlsplit(settings.public_base_url)
    server = make_server(base.hostname or "127.0.0.1", base.port or 80, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="web", daemon=True)
    thread.start()
    click.echo(f"SIPAS survey service: the operator console at {settings.public_base_url}/  (API docs: "
               f"{settings.public_base_url}/api/v1/docs)")
    runner = Worker(app)
    scheduler = runner.scheduler(blocking=False)
    app.extensions[SCHEDULER] = scheduler     # /readyz reports on it
    done = threading.Event()
    if exit_when_done:
        def check() -> None:
            if _all_done(app, runner.messenger):
                done.set()
        scheduler.add_job(check, "interval", seconds=1, id="exit-when-done", max_instances=1, coalesce=True)
    scheduler.start()
    try:
        done.wait() if exit_when_done else thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.shutdown(wait=True)
        runner.close()
        server.shutdown()
    _report(app)


def _all_done(app: Any, messenger: Any) -> bool:
    """Nothing left to do, and no simulated citizen still reading or answering a message."""
    svc = app.extensions["sipas"]
    if getattr(messenger, "busy", lambda: False)():
        return False
    with svc.db.begin() as session:
        return campaigns.all_settled(session, svc.clock())


def _report(app: Any) -> None:
    svc = app.extensions["sipas"]
    with svc.db.begin() as session:
        campaign = campaigns.latest_exported(session)
        if campaign is not None:
            click.echo(f"campaign {campaign.id} {campaign.status.value}; export: {campaign.export_path}")
        for programme in programmes.list_programmes(session):
            for period in programmes.period_summaries(session, svc.registry, programme.id, svc.clock()):
                click.echo(_period_line(programme.name, period))


def _period_line(name: str, period: dict[str, Any]) -> str:
    """One line per programme period: invitations, forms answered, what is still open."""
    by = period["by_disposition"]
    waiting = period["by_status"].get("active", 0) + period["by_status"].get("pending", 0)
    index = period["service_index"]
    return (f"programme {name!r} {period['label']}: {period['contacts']} invited, {by.get('1.1', 0)} forms complete, "
            f"{by.get('1.2', 0) + by.get('2.12', 0)} partial or broken off, {by.get('2.11', 0)} refused, "
            f"{waiting} links still open; service index "
            + (f"{index:.1f} %" if index is not None else "n/a"))
