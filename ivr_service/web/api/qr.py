"""QR posters at the counter: create, list, print (SVG), deactivate, and the scores of
their self-selected responses, which are never part of a campaign's.

Poster routes name the poster (``qr_poster_id``); the access guard checks the caller's
scope on the poster's agency, so another agency's poster answers 404 like an absent one.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apiflask import Schema
from apiflask.fields import Boolean, Date, DateTime, Dict, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf
from flask import Response

from ...core.access import Permission
from ...persistence.models import QrPoster
from ...services import audit, campaigns, qr
from ...services.errors import invalid
from ...services.qr_poster import poster_svg
from ..access import actor, requires
from ..context import services
from .blueprint import bp
from .schemas import CriterionOut, FactorOut


class QrPosterIn(Schema):
    label = String(required=True, validate=Length(1, 200), metadata={"description": "The counter, e.g. “Quầy 1”"})
    questionnaire = String(load_default=qr.DEFAULT_QUESTIONNAIRE, validate=Length(1, 80))
    public_host = String(load_default=None, validate=Length(1, 200), metadata={
        "description": "https origin the code points at; default SIPAS_SURVEY_BASE_URL, else SIPAS_PUBLIC_BASE_URL"})


class QrPosterOut(Schema):
    id = Integer()
    agency_id = Integer()
    code = String()
    label = String()
    questionnaire_key = String()
    public_host = String()
    url = String()
    active = Boolean()
    created_at = DateTime()


class QrScoresQuery(Schema):
    from_ = Date(data_key="from", required=True, metadata={"description": "First day (agency time zone)"})
    to = Date(required=True, metadata={"description": "Last day, included"})
    aggregation = String(load_default="mean_of_criteria", validate=OneOf(["mean_of_criteria", "pooled"]))


class QrScoresOut(Schema):
    sample = String(metadata={"description": "Always “self-selected”: not a probability sample"})
    note = Dict()
    questionnaire = String()
    start = DateTime()
    end = DateTime()
    statuses = Dict(metadata={"description": "Forms started in the period, by status"})
    aggregation = String()
    n_respondents = Integer()
    service_index = Float(allow_none=True)
    overall = Nested(CriterionOut, allow_none=True)
    factors = List(Nested(FactorOut))
    criteria = List(Nested(CriterionOut))


def _out(poster: QrPoster) -> dict[str, Any]:
    return {"id": poster.id, "agency_id": poster.agency_id, "code": poster.code, "label": poster.label,
            "questionnaire_key": poster.questionnaire_key, "public_host": poster.public_host,
            "url": qr.poster_url(poster), "active": poster.active, "created_at": poster.created_at}


@bp.post("/agencies/<int:agency_id>/qr-posters")
@bp.input(QrPosterIn, arg_name="data")
@bp.output(QrPosterOut, status_code=201)
@bp.doc(responses={400: "Invalid input", 404: "Agency not found"})
@requires(Permission.CAMPAIGNS_WRITE, "agency")
def create_qr_poster(agency_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """A poster for the agency or one of its counters; print it from ``poster.svg``."""
    svc = services()
    now = svc.clock()
    host = data["public_host"] or svc.settings.survey_base_url or svc.settings.public_base_url
    with svc.db.begin() as session:
        poster = qr.create_poster(session, svc.registry, agency_id, data["label"], host, now,
                                  questionnaire=data["questionnaire"])
        audit.record(session, actor(), "qr_poster_created", now, target=f"qr_poster:{poster.id}",
                     agency_id=agency_id, label=poster.label, code=poster.code)
        return _out(poster)


@bp.get("/agencies/<int:agency_id>/qr-posters")
@bp.output(QrPosterOut(many=True))
@requires(Permission.CAMPAIGNS_READ, "agency")
def list_qr_posters(agency_id: int) -> list[dict[str, Any]]:
    with services().db.begin() as session:
        return [_out(p) for p in qr.list_posters(session, agency_id)]


@bp.get("/qr-posters/<int:qr_poster_id>/poster.svg")
@bp.doc(responses={200: "The A4 poster (image/svg+xml, 210 × 297 mm)", 404: "Poster not found"})
@requires(Permission.CAMPAIGNS_READ, "qr_poster")
def qr_poster_svg(qr_poster_id: int) -> Response:
    with services().db.begin() as session:
        poster = qr.get_poster(session, qr_poster_id)
        svg = poster_svg(poster, campaigns.get_agency(session, poster.agency_id).name)
        name = f"poster-{poster.code}.svg"
    return Response(svg, mimetype="image/svg+xml",
                    headers={"Content-Disposition": f'inline; filename="{name}"'})


@bp.post("/qr-posters/<int:qr_poster_id>/deactivate")
@bp.output(QrPosterOut)
@requires(Permission.CAMPAIGNS_WRITE, "qr_poster")
def deactivate_qr_poster(qr_poster_id: int) -> dict[str, Any]:
    """The code then shows a kind “no longer in use” page; forms already begun can finish."""
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        poster = qr.deactivate(session, qr_poster_id)
        audit.record(session, actor(), "qr_poster_deactivated", now, target=f"qr_poster:{poster.id}",
                     agency_id=poster.agency_id)
        return _out(poster)


def _utc_bounds(first: date, last: date, zone: str) -> tuple[datetime, datetime]:
    if last < first:
        raise invalid("to", f"{last} is before from {first}")
    if (last - first).days > 3660:
        raise invalid("to", "a period of at most ten years")
    tz = ZoneInfo(zone)
    start = datetime.combine(first, time(), tz)
    end = datetime.combine(last + timedelta(days=1), time(), tz)
    return start, end


@bp.get("/qr-posters/<int:qr_poster_id>/scores")
@bp.input(QrScoresQuery, location="query", arg_name="query")
@bp.output(QrScoresOut)
@requires(Permission.CAMPAIGNS_READ, "qr_poster")
def qr_poster_scores(qr_poster_id: int, query: dict[str, Any]) -> dict[str, Any]:
    """Indices of the poster's complete and partial forms started in the period: a
    self-selected sample, reported apart from (and never mixed into) campaign scores."""
    svc = services()
    start, end = _utc_bounds(query["from_"], query["to"], svc.settings.timezone)
    with svc.db.begin() as session:
        found = qr.scores(session, svc.registry, start=start, end=end, now=svc.clock(), poster_id=qr_poster_id,
                          aggregation=query["aggregation"])
    return {**asdict(found.report), "sample": found.sample, "note": qr.SELF_SELECTED,
            "questionnaire": found.questionnaire, "start": found.start, "end": found.end,
            "statuses": found.statuses}

