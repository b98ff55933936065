"""JSON API, version 1. The OpenAPI document is generated from these declarations."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import json

from apiflask import APIBlueprint, Schema, abort
from flask import Response, request
from apiflask.fields import Boolean, Date, DateTime, Dict, File, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from sqlalchemy import select

from ..core.sampling import RULES, SampleRule
from ..persistence.models import Agency, Campaign
from ..services import campaigns as svc_campaigns
from ..services import frames, results
from ..services import sampling_report as sampling_report_service
from ..services.campaigns import CampaignError, NotFound
from .context import services

bp = APIBlueprint("api_v1", __name__, url_prefix="/api/v1", tag="SIPAS")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class AgencyIn(Schema):
    code = String(required=True, validate=Length(1, 40), metadata={"description": "Short unique code"})
    name = String(required=True, validate=Length(1, 200))
    sample_rule = Dict(load_default=None, metadata={
        "description": "Sample-size rule: {kind: seed002|seed003|slovin|cochran|fixed|census, n, margin}"})


class AgencyOut(Schema):
    id = Integer()
    code = String()
    name = String()
    sample_rule = Dict(allow_none=True)
    created_at = DateTime()


class CampaignIn(Schema):
    agency_id = Integer(required=True)
    name = String(required=True, validate=Length(1, 200))
    questionnaire = String(load_default="sipas-2024")
    timezone = String(load_default="Asia/Ho_Chi_Minh")
    language = String(load_default="vi", validate=OneOf(["vi", "en"]))
    calls_per_second = Float(load_default=1.0, validate=Range(min=0.01, max=1000))
    resume_mode = String(load_default="resume", validate=OneOf(["resume", "restart"]))
    window = Dict(load_default=None, metadata={
        "description": "Calling window: weekdays (0 = Monday), parts [[\"08:00\", \"17:00\"]], closed_dates, "
                       "public_holidays (\"VN\" or null). Default: Monday–Saturday 08:00–17:00 without holidays"})
    retry = Dict(load_default=None, metadata={
        "description": "Retry policy: max_attempts, delays {busy, no_answer, failed, machine, break_off, partial, "
                       "canceled} in seconds, min_gap_s per number (default 86400)"})
    period_start = Date(load_default=None)
    period_end = Date(load_default=None)
    starts_at = DateTime(load_default=None, metadata={"description": "No attempt before; ISO 8601 with offset"})
    ends_at = DateTime(load_default=None, metadata={"description": "No attempt after; the campaign then closes"})
    target_completes = Integer(load_default=None, validate=Range(min=1),
                               metadata={"description": "Close once this many interviews are complete"})
    channel_plan = List(Dict(), load_default=None, metadata={
        "description": 'Channels in order, e.g. [{"channel": "voice", "max_attempts": 3}, '
                       '{"channel": "sms", "max_attempts": 1}]'})
    spread = Boolean(load_default=False, metadata={
        "description": "Spread first attempts evenly over the open days left before ends_at"})


class CampaignPatchIn(Schema):
    """Only the fields sent change; null clears an optional one."""

    name = String(validate=Length(1, 200))
    questionnaire = String()
    timezone = String()
    language = String(validate=OneOf(["vi", "en"]))
    calls_per_second = Float(validate=Range(min=0.01, max=1000))
    resume_mode = String(validate=OneOf(["resume", "restart"]))
    window = Dict(allow_none=True)
    retry = Dict(allow_none=True)
    period_start = Date(allow_none=True)
    period_end = Date(allow_none=True)
    starts_at = DateTime(allow_none=True)
    ends_at = DateTime(allow_none=True)
    target_completes = Integer(allow_none=True, validate=Range(min=1))
    channel_plan = List(Dict(), allow_none=True)
    spread = Boolean()


class CampaignOut(Schema):
    id = Integer()
    agency_id = Integer()
    name = String()
    questionnaire_key = String()
    status = String()
    timezone = String()
    language = String()
    calls_per_second = Float()
    resume_mode = String()
    window = Dict()
    retry = Dict()
    period_start = Date(allow_none=True)
    period_end = Date(allow_none=True)
    starts_at = DateTime(allow_none=True)
    ends_at = DateTime(allow_none=True)
    target_completes = Integer(allow_none=True)
    channel_plan = List(Dict())
    spread = Boolean()
    rates = Dict(allow_none=True)
    sample_seed = Integer(allow_none=True)
    frame_size = Integer(allow_none=True)
    created_at = DateTime()
    started_at = DateTime(allow_none=True)
    completed_at = DateTime(allow_none=True)


class ActionIn(Schema):
    action = String(required=True, validate=OneOf(["start", "pause", "resume", "cancel"]))


class PreviewIn(Schema):
    file = File(required=True, metadata={"description": "CSV or XLSX transaction list"})
    encoding = String(load_default=None, metadata={"description": "e.g. cp1258 for legacy files"})
    columns = String(load_default=None, metadata={
        "description": 'JSON object mapping our column names to headers as written, e.g. {"phone": "ĐT di động"}'})


class FrameIn(PreviewIn):
    rule = String(load_default=None, validate=OneOf(list(RULES)),
                  metadata={"description": "Sample-size rule; default: the agency's rule (seed002 tiers)"})
    n = Integer(load_default=None, validate=Range(min=1))
    margin = Float(load_default=0.05, validate=Range(min=0.001, max=0.49))
    seed = Integer(load_default=None)
    reserve = Float(load_default=0.0, validate=Range(min=0, max=1),
                    metadata={"description": "Reserve pool as a share of the sample"})
    replicates = Integer(load_default=1, validate=Range(min=1, max=20))
    recent_days = Integer(load_default=90, validate=Range(min=0, max=3650),
                          metadata={"description": "Exclude numbers called in the last N days (0: off)"})


class FrameOut(Schema):
    rows = Integer()
    header_row = Integer()
    columns = Dict()
    ignored_rows = List(Dict())
    rejected = List(Dict())
    excluded = Dict()
    eligible = Integer()
    drawn = Integer()
    reserve = Integer()
    strata = List(Dict())
    seed = Integer(allow_none=True)
    rule = Dict()


class SamplingReportOut(Schema):
    campaign_id = Integer()
    seed = Integer(allow_none=True)
    strata = List(Dict())


class ReleaseOut(Schema):
    released = Integer()


class ProgressOut(Schema):
    campaign_id = Integer()
    status = String()
    contacts = Integer()
    by_status = Dict()
    by_disposition = Dict()
    attempts = Integer()
    attempts_by_status = Dict()
    attempts_last_hour = Integer()
    attempts_per_hour = List(Dict(), metadata={
        "description": "The last 24 local clock hours, oldest first: {hour, attempts}"})
    calls_in_progress = Integer()
    rates = Dict()


class CriterionOut(Schema):
    item_id = String()
    factor = String(allow_none=True)
    n = Integer()
    n_satisfied = Integer()
    n_dissatisfied = Integer()
    n_no_opinion = Integer()
    n_unanswered = Integer()
    index = Float(allow_none=True)
    ci_low = Float(allow_none=True)
    ci_high = Float(allow_none=True)
    mean = Float(allow_none=True)
    weighted_index = Float(allow_none=True)
    dissatisfied_flag = Boolean()


class FactorOut(Schema):
    factor = String()
    index = Float(allow_none=True)
    weighted_index = Float(allow_none=True)
    n_criteria = Integer()
    n = Integer()


class ScoresOut(Schema):
    questionnaire = String()
    aggregation = String()
    n_respondents = Integer()
    service_index = Float(allow_none=True)
    weighted_service_index = Float(allow_none=True)
    overall = Nested(CriterionOut, allow_none=True)
    factors = List(Nested(FactorOut))
    criteria = List(Nested(CriterionOut))


class ScoresQuery(Schema):
    aggregation = String(load_default="mean_of_criteria", validate=OneOf(["mean_of_criteria", "pooled"]))


class ExportOut(Schema):
    path = String()


class QuestionnaireOut(Schema):
    key = String()
    title = String()
    version = Integer()
    rated_items = Integer()


def _columns(raw: str | None) -> dict[str, str] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        abort(400, f"columns: not JSON ({exc})")
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        abort(400, 'columns: expected a JSON object such as {"phone": "ĐT di động"}')
    return value


def _fail(exc: Exception) -> None:
    if isinstance(exc, NotFound):
        abort(404, str(exc))
    abort(getattr(exc, "status", 400), str(exc))


@bp.get("/questionnaires")
@bp.output(QuestionnaireOut(many=True))
def list_questionnaires() -> list[dict[str, Any]]:
    registry = services().registry
    return [{"key": q.key, "title": q.title.vi, "version": q.version, "rated_items": len(q.rated_items)}
            for q in (registry.get(k) for k in registry.keys())]


@bp.get("/agencies")
@bp.output(AgencyOut(many=True))
def list_agencies() -> list[Agency]:
    with services().db.begin() as session:
        return list(session.scalars(select(Agency).order_by(Agency.id)))


@bp.post("/agencies")
@bp.input(AgencyIn, arg_name="data")
@bp.output(AgencyOut, status_code=201)
def create_agency(data: dict[str, Any]) -> Agency:
    svc = services()
    try:
        with svc.db.begin() as session:
            return svc_campaigns.create_agency(session, data["code"], data["name"], svc.clock(),
                                               sample_rule=data["sample_rule"])
    except CampaignError as exc:
        _fail(exc)
        raise


@bp.get("/campaigns")
@bp.output(CampaignOut(many=True))
def list_campaigns() -> list[Campaign]:
    with services().db.begin() as session:
        return list(session.scalars(select(Campaign).order_by(Campaign.id)))


@bp.post("/campaigns")
@bp.input(CampaignIn, arg_name="data")
@bp.output(CampaignOut, status_code=201)
def create_campaign(data: dict[str, Any]) -> Campaign:
    svc = services()
    try:
        with svc.db.begin() as session:
            return svc_campaigns.create_campaign(session, svc.registry, now=svc.clock(), **data)
    except (CampaignError, NotFound) as exc:
        _fail(exc)
        raise


@bp.patch("/campaigns/<int:campaign_id>")
@bp.input(CampaignPatchIn, arg_name="data")
@bp.output(CampaignOut)
@bp.doc(summary="Configure a campaign", description=(
    "Changes the settings sent. A running campaign applies them at its next dispatch round; "
    "questionnaire and timezone change only in draft, starts_at not while running (pause first); "
    "a completed or cancelled campaign answers 409."))
def configure_campaign(campaign_id: int, data: dict[str, Any]) -> Campaign:
    svc = services()
    try:
        with svc.db.begin() as session:
            return svc_campaigns.configure_campaign(session, svc.registry, campaign_id, data)
    except (CampaignError, NotFound) as exc:
        _fail(exc)
        raise


@bp.get("/campaigns/<int:campaign_id>")
@bp.output(CampaignOut)
def get_campaign(campaign_id: int) -> Campaign:
    try:
        with services().db.begin() as session:
            return svc_campaigns.get_campaign(session, campaign_id)
    except NotFound as exc:
        _fail(exc)
        raise


@bp.post("/campaigns/<int:campaign_id>/actions")
@bp.input(ActionIn, arg_name="data")
@bp.output(CampaignOut)
def campaign_action(campaign_id: int, data: dict[str, Any]) -> Campaign:
    """Start, pause, resume or cancel a campaign."""
    svc = services()
    try:
        with svc.db.begin() as session:
            return svc_campaigns.transition(session, campaign_id, data["action"], svc.clock(), svc.registry)
    except (CampaignError, NotFound) as exc:
        _fail(exc)
        raise


@bp.post("/campaigns/<int:campaign_id>/frame")
@bp.input(FrameIn, location="form_and_files", arg_name="data")
@bp.output(FrameOut, status_code=201)
def upload_frame(campaign_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Import a transaction list into a draft campaign and draw its sample."""
    svc = services()
    try:
        rule = SampleRule(kind=data["rule"], n=data["n"], margin=data["margin"]) if data["rule"] else None
    except ValueError as exc:
        abort(400, str(exc))
    seed = data["seed"] if data["seed"] is not None else int(svc.clock().timestamp())
    try:
        with svc.db.begin() as session:
            campaign = svc_campaigns.get_campaign(session, campaign_id, lock=True)
            report = frames.import_and_sample(session, campaign, data["file"], rule, seed, svc.clock(),
                                              encoding=data["encoding"], column_map=_columns(data["columns"]),
                                              reserve_share=data["reserve"], replicates=data["replicates"],
                                              recent_days=data["recent_days"])
    except (frames.FrameError, NotFound, ValueError) as exc:
        _fail(exc)
        raise
    return report.to_dict()


@bp.post("/frames/preview")
@bp.input(PreviewIn, location="form_and_files", arg_name="data")
@bp.output(FrameOut)
def preview_frame(data: dict[str, Any]) -> dict[str, Any]:
    """Validate a transaction list and report what an import would do; stores nothing."""
    svc = services()
    try:
        with svc.db.begin() as session:
            return frames.preview(session, data["file"], svc.clock(), encoding=data["encoding"],
                                  column_map=_columns(data["columns"])).to_dict()
    except frames.FrameError as exc:
        _fail(exc)
        raise


@bp.post("/campaigns/<int:campaign_id>/reserve/release")
@bp.output(ReleaseOut)
def release_reserve(campaign_id: int) -> dict[str, Any]:
    """Release the next reserve wave of a campaign's sample."""
    svc = services()
    try:
        with svc.db.begin() as session:
            campaign = svc_campaigns.get_campaign(session, campaign_id, lock=True)
            return {"released": frames.release_reserve(session, campaign, svc.clock())}
    except (frames.FrameError, NotFound) as exc:
        _fail(exc)
        raise


@bp.get("/campaigns/<int:campaign_id>/sampling-report")
@bp.output(SamplingReportOut)
def sampling_report(campaign_id: int) -> dict[str, Any]:
    """Per agency × field stratum and in total: frame rows, eligible, excluded by reason,
    drawn, reserve and weight. ``?format=xlsx`` downloads it as a workbook instead."""
    svc = services()
    try:
        with svc.db.begin() as session:
            campaign = svc_campaigns.get_campaign(session, campaign_id)
            if request.args.get("format") == "xlsx":
                path = sampling_report_service.write_sampling_report(session, campaign, svc.settings.export_dir,
                                                                     svc.clock())
                return Response(path.read_bytes(), mimetype=XLSX,  # type: ignore[return-value]
                                headers={"Content-Disposition": f"attachment; filename={path.name}"})
            table = sampling_report_service.sampling_table(session, campaign)
    except NotFound as exc:
        _fail(exc)
        raise
    return {"campaign_id": campaign_id, "seed": campaign.sample_seed,
            "strata": json.loads(table.to_json(orient="records", force_ascii=False))}


@bp.get("/frames/template.xlsx")
@bp.doc(summary="Download the frame template", description="XLSX template of the accepted layout, in Vietnamese.")
def frame_template() -> Response:
    return Response(sampling_report_service.frame_template(), headers={
        "Content-Disposition": "attachment; filename=mau-danh-sach-ho-so.xlsx"},
        mimetype=XLSX)


@bp.get("/campaigns/<int:campaign_id>/progress")
@bp.output(ProgressOut)
def campaign_progress(campaign_id: int) -> dict[str, Any]:
    svc = services()
    try:
        with svc.db.begin() as session:
            return asdict(svc_campaigns.progress(session, campaign_id, svc.clock()))
    except NotFound as exc:
        _fail(exc)
        raise


@bp.get("/campaigns/<int:campaign_id>/scores")
@bp.input(ScoresQuery, location="query", arg_name="query")
@bp.output(ScoresOut)
def campaign_scores(campaign_id: int, query: dict[str, Any]) -> dict[str, Any]:
    """SIPAS indices per criterion, factor and overall; respondents are pseudonymous."""
    svc = services()
    try:
        with svc.db.begin() as session:
            return asdict(results.campaign_scores(session, svc.registry, campaign_id, query["aggregation"]))
    except NotFound as exc:
        _fail(exc)
        raise


@bp.post("/campaigns/<int:campaign_id>/exports")
@bp.output(ExportOut, status_code=201)
def campaign_export(campaign_id: int) -> dict[str, Any]:
    svc = services()
    try:
        with svc.db.begin() as session:
            path = results.write_export(session, svc.registry, campaign_id, svc.settings.export_dir, svc.clock())
    except NotFound as exc:
        _fail(exc)
        raise
    return {"path": str(path)}
