"""The worker: dispatch due attempts and close finished campaigns on a schedule.

Each process runs its own APScheduler with the in-memory job store; all shared state
lives in the database, so several workers can run side by side on PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from . import logs
from .container import Services
from .providers import (
    AccountConfig,
    MessagingProvider,
    Messengers,
    VoiceProvider,
    build_messaging_provider,
    build_provider,
)
from .providers.notify import Notifier, SmtpWebhookNotifier
from .providers.sms_simulator import items_of
from .services import (
    alerts,
    dispatch,
    housekeeping,
    intake,
    message_receipts,
    messaging,
    messaging_accounts,
    period_reports,
    retention,
    weekly,
    zns_tokens,
)
from .services.call_costs import Costing
from .web.urls import esms_status_url, sms_status_url, webhook_url

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, app: Flask, provider: VoiceProvider | None = None,
                 messenger: MessagingProvider | None = None, notifier: Notifier | None = None) -> None:
        self.services: Services = app.extensions["sipas"]
        settings = self.services.settings
        self.provider = provider or build_provider(settings, questionnaire_for=self.services.registry.get)
        self.pacing = dispatch.Pacing.from_settings(settings, self.provider.name)
        self.overdue = dispatch.Overdue.from_settings(settings)
        self.messenger = messenger or build_messaging_provider(settings, item_for=items_of(self.services.registry))
        self.message_pacing = messaging.MessagePacing.from_settings(settings, self.messenger.name)
        # The installation's provider, and one adapter per messaging account (programme routing).
        self.messengers = Messengers(settings, self.messenger, self._account_status_url,
                                     zns_tokens=self._zns_tokens, clock=self.services.clock)
        self.notifier = notifier or SmtpWebhookNotifier.from_settings(settings)
        self.alert_config = alerts.AlertConfig.from_settings(settings)

    def _url(self, kind: str, token: str) -> str:
        return webhook_url(self.services.settings.public_base_url, kind, token)

    def dispatch(self) -> int:
        """One dispatch round: claim due contacts and place their calls."""
        s = self.services
        return dispatch.dispatch_once(s.db, s.registry, self.provider, self._url, s.clock, self.pacing,
                                      batch=s.settings.dispatch_batch)

    def _sms_status_url(self, token: str) -> str:
        return sms_status_url(self.services.settings.public_base_url, token)

    def _account_status_url(self, account: AccountConfig) -> str:
        return esms_status_url(self.services.settings.public_base_url, account.id, account.callback_secret)

    def _zns_tokens(self, account: AccountConfig) -> zns_tokens.DbTokenSource:
        s = self.services
        return zns_tokens.account_tokens(s.db, s.settings, account, s.clock())

    def _refresh_accounts(self) -> None:
        with self.services.db.begin() as session:
            self.messengers.refresh(messaging_accounts.configs(session))

    def messages(self) -> int:
        """One message round: claim due invitations (and reminders, and messages whose
        lease expired) and send them, each through its account's provider."""
        s = self.services
        self._refresh_accounts()
        return messaging.send_round(s.db, s.registry, self.messengers, self._sms_status_url, s.clock,
                                    self.message_pacing, s.settings.survey_base_url or s.settings.public_base_url,
                                    batch=s.settings.dispatch_batch, reminders=False)

    def reminders(self) -> int:
        """Send the reminders that are due (once per link, only if never opened)."""
        s = self.services
        self._refresh_accounts()
        return messaging.reminder_round(s.db, s.registry, self.messengers, self._sms_status_url, s.clock,
                                        self.message_pacing, batch=s.settings.dispatch_batch)

    def expire_links(self) -> int:
        """End SMS attempts whose link expired unfinished and settle their contacts."""
        s = self.services
        return messaging.expire_links(s.db, s.registry, s.clock())

    def intake(self) -> int:
        """Decide the reported dossiers waiting in the intake, in batches."""
        s = self.services
        return intake.drain(s.db, s.clock)

    def reconcile(self) -> int:
        """Ask the providers about overdue calls and messages that never reported a final
        status (run at start, then on schedule)."""
        s = self.services
        calls = dispatch.reconcile_stale(s.db, s.registry, self.provider, s.clock(), self.overdue)
        self._refresh_accounts()
        return calls + message_receipts.reconcile_stale(s.db, s.registry, self.messengers, s.clock())

    def housekeeping(self) -> list[int]:
        """Fold tallies, start and close campaigns, export completed ones (one worker at a
        time across the cluster); returns the campaigns closed."""
        s = self.services
        return housekeeping.run(s.db, s.registry, s.settings.export_dir, s.clock, Costing.from_settings(s.settings),
                                retention_days=s.settings.export_retention_days)

    def weekly_export(self) -> Path | None:
        """Write this week's CCHC export once it is due, once across the cluster."""
        s = self.services
        schedule = s.settings.weekly_schedule
        if schedule is None:
            return None
        return weekly.run_if_due(s.db, s.registry, schedule, s.settings.export_dir, s.clock(),
                                 Costing.from_settings(s.settings))

    def alerts(self) -> alerts.Round:
        """Record the alerts the current period calls for (once across the cluster) and
        deliver the ones still owed."""
        s = self.services
        return alerts.check(s.db, s.registry, s.clock(), self.alert_config, self.notifier)

    def period_reports(self) -> list[Path]:
        """Write the reports of each period kind once it is over, once across the cluster."""
        s = self.services
        return period_reports.run_if_due(s.db, s.registry, s.settings.report_period_kinds, s.settings.export_dir,
                                         s.clock(), period_reports.ReportOptions.from_settings(s.settings))

    def retention(self) -> retention.Counts | None:
        """Purge the personal data past its retention, once per hour across the cluster."""
        s = self.services
        return retention.run_if_due(s.db, s.clock(), s.settings.retention_days, s.settings.phone_hash_key)

    def scheduler(self, blocking: bool) -> BaseScheduler:
        scheduler: BaseScheduler = BlockingScheduler() if blocking else BackgroundScheduler()
        interval = self.services.settings.dispatch_interval
        # Stable ids, one instance at a time, missed runs coalesced (Redash / RapidPro habit).
        scheduler.add_job(self._guard(self.dispatch), "interval", seconds=interval, id="dispatch",
                          replace_existing=True, max_instances=1, coalesce=True)
        scheduler.add_job(self._guard(self.messages), "interval", seconds=interval, id="messages",
                          replace_existing=True, max_instances=1, coalesce=True)
        scheduler.add_job(self._guard(self.reminders), "interval", seconds=max(interval * 5, 5.0), id="reminders",
                          replace_existing=True, max_instances=1, coalesce=True)
        scheduler.add_job(self._guard(self.expire_links), "interval", seconds=max(interval * 5, 5.0),
                          id="expire-links", replace_existing=True, max_instances=1, coalesce=True)
        scheduler.add_job(self._guard(self.intake), "interval", seconds=interval, id="intake",
                          replace_existing=True, max_instances=1, coalesce=True)
        scheduler.add_job(self._guard(self.housekeeping), "interval", seconds=max(interval, 2.0),
                          id="housekeeping", replace_existing=True, max_instances=1, coalesce=True)
        # The first round at once: after a restart, calls left in progress are asked of the
        # provider as soon as they are overdue, not one interval later.
        scheduler.add_job(self._guard(self.reconcile), "interval", seconds=max(interval * 5, 5.0),
                          id="reconcile", replace_existing=True, max_instances=1, coalesce=True,
                          next_run_time=datetime.now(UTC))
        # Checks every minute whether this week's export is due: a worker that was down at
        # the scheduled time catches up, and job_runs makes it once per week.
        scheduler.add_job(self._guard(self.weekly_export), "interval", seconds=60, id="weekly-export",
                          replace_existing=True, max_instances=1, coalesce=True)
        # Alerts are near real time; the unique key, not the schedule, makes each one once.
        scheduler.add_job(self._guard(self.alerts), "interval", seconds=60, id="alerts",
                          replace_existing=True, max_instances=1, coalesce=True)
        # Period reports: checked every minute like the weekly export; job_runs makes each once per kind.
        scheduler.add_job(self._guard(self.period_reports), "interval", seconds=60, id="period-reports",
                          replace_existing=True, max_instances=1, coalesce=True)
        # The purge: checked every ten minutes, run once per hour (job_runs).
        scheduler.add_job(self._guard(self.retention), "interval", seconds=600, id="retention",
                          replace_existing=True, max_instances=1, coalesce=True)
        return scheduler

    @staticmethod
    def _guard(job: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            logs.clear()    # the pool's threads run job after job: no ids left from the last one
            try:
                job()
            except Exception:  # a failing round must not stop the scheduler
                log.exception("job %s failed", job.__name__)
        run.__name__ = job.__name__
        return run

    def close(self) -> None:
        self.provider.close()
        self.messengers.close()     # and the installation's messenger
