"""Questionnaires: how long a complete call takes and what it costs."""

from __future__ import annotations

import click

from ..container import Services
from ..core.estimate import describe
from ..core.questionnaire import INSTRUCTION_MODES, LANGUAGES
from ..services import call_costs
from .base import _echo_json, cli, pass_services


@cli.command("estimate")
@click.argument("key", required=False)
@click.option("--language", type=click.Choice(LANGUAGES), default=None, help="One language (default: each)")
@click.option("--speech", is_flag=True, help="The campaign takes spoken answers: the speech hint is said")
@click.option("--hotline", default=None, help="The agency's line said at the close, e.g. 1022")
@click.option("--agency", default=None, help="The agency's name said in the intro (default: one of ordinary length)")
@click.option("--instructions", type=click.Choice(INSTRUCTION_MODES), default=None,
              help="Walk the call with this instruction mode instead of the questionnaire's (to compare)")
@click.option("--json", "as_json", is_flag=True, help="Print the figures and every text said as JSON")
@pass_services
def estimate(svc: Services, key: str | None, language: str | None, speech: bool, hotline: str | None,
             agency: str | None, instructions: str | None, as_json: bool) -> None:
    """Expected length and cost of a complete call, for every questionnaire (or KEY) and
    language: the longest and the shortest path."""
    settings = svc.settings
    prices = settings.voice_price_table
    found = [call_costs.questionnaire_estimate(svc.registry, k, lang, speech=speech, hotline=hotline, agency=agency,
                                               instructions=instructions, pace=settings.call_pace)
             for k in ([key] if key else svc.registry.keys()) for lang in ([language] if language else LANGUAGES)]
    if as_json:
        _echo_json([call_costs.figures(e, prices) for e in found])
        return
    price = prices.get("*") if prices else None
    click.echo(f"{settings.speaking_rate:g} characters a second, {settings.answer_seconds:g} s to answer an item; "
               f"agency {found[0].agency!r}; speech hint {'on' if speech else 'off'}; "
               f"hotline {found[0].hotline or 'none'}; "
               + (f"{price:,.0f} VND a started minute" if price is not None else "no call prices (SIPAS_VOICE_PRICES)"))
    for e in found:
        if not e.voice_items:
            click.echo(f"{e.questionnaire} ({e.language}): web only, no call")
            continue
        for path in e.paths:
            cost = f", {path.minutes * price:,.0f} VND" if price is not None else ""
            click.echo(f"{describe(e, path)} [instructions {e.instructions}]; "
                       f"{path.minutes} started minute{'' if path.minutes == 1 else 's'}{cost}")
