"""Prometheus metrics: what the service counts, and the scrape.

Under gunicorn every web process and every worker counts in its own memory; with
``PROMETHEUS_MULTIPROC_DIR`` set (the client library's own variable, read when it is
first imported) each process writes its samples to files in that directory, and a
scrape of any web process sums the files of all of them, the dead ones included
(counters never go back). Workers on the same machine with the same directory are
summed too. gunicorn's ``child_exit`` hook (``ivr_service.gunicorn_conf``) tells the
library a process is gone. Without the variable (the laptop's all-in-one ``serve``) the
one process's own registry is scraped.

Labels take few values: routes are URL rules (``/voice/<token>/answer``, never a
path), outcomes and statuses come from the enums, provider codes are cut to a short
token. No campaign id, token, phone number or name is ever a label. Campaign progress
is not counted by the processes but read from the tallies at scrape time, summed over
campaigns by campaign status; the transaction intake's backlog is read then too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from .settings import SettingsError

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

WEBHOOKS = Counter("sipas_webhook_requests", "Provider webhooks and callbacks answered, by URL rule and status",
                   ["route", "status"])
WEBHOOK_SECONDS = Histogram("sipas_webhook_duration_seconds", "Time to answer a provider webhook, by URL rule",
                            ["route"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
ATTEMPTS = Counter("sipas_attempts_ended", "Attempts that reached their final outcome, by channel and outcome",
                   ["channel", "outcome"])
MESSAGES = Counter("sipas_messages_final", "Messages (SMS, ZNS) that reached a final status, by status",
                   ["status"])
DISPATCH_SECONDS = Histogram("sipas_dispatch_round_seconds", "Duration of a dispatch round (claim and send)",
                             ["channel"], buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0))
CLAIMS = Counter("sipas_dispatch_claims", "Attempts and messages claimed by dispatch rounds", ["channel"])
PACING_WAITS = Counter("sipas_pacing_waits", "Claims cut short because a pacing bucket was empty, by bucket kind",
                       ["bucket"])
PROVIDER_ERRORS = Counter("sipas_provider_errors", "Calls and messages a provider refused, by provider, kind and code",
                          ["provider", "kind", "code"])

_CODE = re.compile(r"-?[A-Za-z0-9_.]{1,12}")


def provider_error(provider: str, kind: str, code: str | None) -> None:
    """Count a provider's refusal; a code that is not a short token counts as ``other``."""
    label = code if code is not None and _CODE.fullmatch(code) else ("none" if code is None else "other")
    PROVIDER_ERRORS.labels(provider=provider[:20], kind=kind, code=label).inc()


def bucket_kind(key: str) -> str:
    """``sender:sms:account:7`` → ``sender:sms:account``; ``campaign:12`` → ``campaign``."""
    return ":".join(part for part in key.split(":") if not part.isdigit())[:40]


class Progress(Collector):
    """Campaign progress, read from the tallies at scrape time."""

    def __init__(self, read: Callable[[], dict[str, dict[tuple[str, str], int]]]) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        totals = self.read()
        campaigns = GaugeMetricFamily("sipas_campaigns", "Campaigns by status", labels=["status"])
        for (status, _), n in sorted(totals["campaigns"].items()):
            campaigns.add_metric([status], n)
        contacts = GaugeMetricFamily("sipas_contacts", "Contacts of campaigns, by campaign status and contact status",
                                     labels=["campaign_status", "status"])
        for (campaign_status, status), n in sorted(totals["contacts"].items()):
            contacts.add_metric([campaign_status, status], n)
        attempts = GaugeMetricFamily("sipas_attempts", "Attempts of campaigns, by campaign status and attempt status",
                                     labels=["campaign_status", "status"])
        for (campaign_status, status), n in sorted(totals["attempts"].items()):
            attempts.add_metric([campaign_status, status], n)
        yield from (campaigns, contacts, attempts)


class Intake(Collector):
    """The transaction intake's backlog, read at scrape time: records queued, and how long
    the oldest has waited (0 with none queued). A backlog that grows, or an oldest record
    older than a few drain intervals, means no worker is deciding them."""

    def __init__(self, read: Callable[[], tuple[int, float]]) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        queued, oldest = self.read()
        yield GaugeMetricFamily("sipas_transaction_intake_queued",
                                "Reported dossiers in the intake, not yet decided", value=queued)
        yield GaugeMetricFamily("sipas_transaction_intake_oldest_seconds",
                                "Seconds the oldest undecided record of the intake has waited", value=oldest)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def check_directory() -> None:
    """Stop start-up, naming the variable, when the multiprocess directory is unusable
    (otherwise the first counted request would fail)."""
    folder = multiprocess_dir()
    if folder is not None and not (os.path.isdir(folder) and os.access(folder, os.W_OK)):
        raise SettingsError(f"PROMETHEUS_MULTIPROC_DIR: {folder!r} is not a writable directory; create it "
                            f"(empty) before the service starts, or unset the variable")


def scrape(*read_at_scrape: Collector) -> bytes:
    """The exposition text: every process's samples (multiprocess mode) or this one's,
    plus the collectors given (read from the database at scrape time)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Own())
    for collector in read_at_scrape:
        registry.register(collector)
    return generate_latest(registry)


class _Own(Collector):
    """The default registry's metrics, without registering the progress collector in it
    (a scrape adds it to a registry of its own)."""

    def collect(self) -> Iterator[object]:  # type: ignore[override]
        yield from REGISTRY.collect()


def mark_process_dead(pid: int) -> None:
    """gunicorn's ``child_exit``: the process's live gauges go (counters stay)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)
