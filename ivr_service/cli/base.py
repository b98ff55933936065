"""The command group, its error mapping and what every command module shares: building
the app, passing its services, parsing common option values."""

from __future__ import annotations

import functools
import getpass
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from ..app import create_app
from ..container import Services
from ..core.questionnaire import QuestionnaireError
from ..services import campaigns
from ..services.audit import Actor
from ..services.errors import ServiceError
from ..settings import Settings, SettingsError

CLI_ACTOR = Actor(f"cli:{getpass.getuser()}")


class ConfigurationError(click.ClickException):
    """A setting or questionnaire file is wrong: nothing was started (exit code 2)."""

    exit_code = 2


class SipasGroup(click.Group):
    """Maps the errors every command may meet, once: a message naming the problem and a
    non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            raise ConfigurationError(f"configuration error: {exc}") from None
        except QuestionnaireError as exc:
            raise ConfigurationError(f"questionnaire error: {exc}") from None
        except ServiceError as exc:
            raise click.ClickException(exc.message) from None


def build_app() -> Any:
    return create_app(Settings.from_env())


def pass_services(command: Callable[..., Any]) -> Callable[..., Any]:
    """Build the app from the environment and pass its services as the first argument."""
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        return command(build_app().extensions["sipas"], *args, **kwargs)
    return run


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@click.group(cls=SipasGroup)
def cli() -> None:
    """SIPAS telephone survey service."""



def _none_or(parse: Any) -> Any:
    """A click converter that reads 'none' as None (clears a setting)."""
    def convert(value: str | None) -> Any:
        if value is None or value.strip().lower() == "none":
            return None
        return parse(value)
    return convert


def _moment(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected ISO 8601 with an offset, e.g. 2026-12-01T08:00+07:00, got {value!r}") \
            from None


def _json_object(value: str) -> dict[str, Any]:
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"expected a JSON object, got {value!r}")
    return data


def _plan(value: str) -> list[dict[str, Any]]:
    """``CHANNEL:ATTEMPTS[,…]``; an sms step may add its mode and session hours
    (``sms:1:two_way`` or ``sms:1:two_way:12``), which the campaign service checks."""
    steps = []
    usage = (f"expected CHANNEL:ATTEMPTS[,…] such as voice:3,sms:1 (or sms:1:two_way[:HOURS]), "
             f"got {value!r}")
    for part in value.split(","):
        channel, attempts, mode, hours, *rest = part.strip().split(":") + [""] * 3
        if any(rest) or (hours and not mode):
            raise click.BadParameter(usage)
        try:
            step: dict[str, Any] = {"channel": channel, "max_attempts": int(attempts or 1)}
            if mode:
                step["mode"] = mode
            if hours:
                step["session_hours"] = int(hours)
        except ValueError:
            raise click.BadParameter(usage) from None
        steps.append(step)
    return steps


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter(f"expected a number, got {value!r}") from None


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"expected a whole number, got {value!r}") from None


# Options shared by create-campaign and configure-campaign; the converters run in


def _column_map(pairs: tuple[str, ...]) -> dict[str, str] | None:
    mapping = {}
    for pair in pairs:
        name, sep, header = pair.partition("=")
        if not sep or not name.strip() or not header.strip():
            raise click.BadParameter(f"expected NAME=HEADER, got {pair!r}", param_hint="--column")
        mapping[name.strip()] = header.strip()
    return mapping or None



def _agency_option(value: str | None, svc: Services) -> int | None:
    """--agency as an id or a code; none means the whole installation."""
    if value is None:
        return None
    with svc.db.begin() as session:
        found = next((a.id for a in campaigns.list_agencies(session) if str(a.id) == value or a.code == value), None)
    if found is None:
        raise click.BadParameter(f"no agency with id or code {value!r}", param_hint="--agency")
    return found
