"""Sampling frames: import and sample, preview, reserve waves, sampling report, template."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request

from ...core.access import Permission
from ...services import audit, campaigns, frames, sampling_report
from ...services.errors import invalid
from ..access import actor, requires
from ..context import services
from .blueprint import bp
from .schemas import FrameIn, FrameOut, PreviewIn, ReleaseOut, SamplingReportOut

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _columns(raw: str | None) -> dict[str, str] | None:
    """The ``columns`` form field: a JSON object of our column names to headers as written."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise invalid("columns", f"not JSON ({exc})") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise invalid("columns", 'expected a JSON object such as {"phone": "ĐT di động"}')
    return value


@bp.post("/campaigns/<int:campaign_id>/frame")
@bp.input(FrameIn, location="form_and_files", arg_name="data")
@bp.output(FrameOut, status_code=201)
@bp.doc(responses={400: "The file or a parameter is invalid", 409: "The campaign is not a draft or has a sample"})
@requires(Permission.FRAMES_WRITE, "campaign")
def upload_frame(campaign_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Import a transaction list into a draft campaign and draw its sample."""
    svc = services()
    rule = frames.sample_rule(data["rule"], data["n"], data["margin"])
    seed = data["seed"] if data["seed"] is not None else int(svc.clock().timestamp())
    report = frames.import_file(svc.db, campaign_id, data["file"], rule, seed, svc.clock(),
                                encoding=data["encoding"], column_map=_columns(data["columns"]),
                                reserve_share=data["reserve"], replicates=data["replicates"],
                                recent_days=data["recent_days"], max_rows=svc.settings.max_frame_rows,
                                actor=actor(), file_name=data["file"].filename)
    return report.to_dict()


@bp.post("/frames/preview")
@bp.input(PreviewIn, location="form_and_files", arg_name="data")
@bp.output(FrameOut)
@bp.doc(responses={400: "The file is not a usable frame"})
@requires(Permission.FRAMES_WRITE)
def preview_frame(data: dict[str, Any]) -> dict[str, Any]:
    """Validate a transaction list and report what an import would do; stores nothing."""
    svc = services()
    return frames.preview_file(svc.db, data["file"], svc.clock(), encoding=data["encoding"],
                               column_map=_columns(data["columns"]), max_rows=svc.settings.max_frame_rows).to_dict()


@bp.post("/campaigns/<int:campaign_id>/reserve/release")
@bp.output(ReleaseOut)
@bp.doc(responses={409: "No reserve left"})
@requires(Permission.FRAMES_WRITE, "campaign")
def release_reserve(campaign_id: int) -> dict[str, Any]:
    """Release the next reserve wave of a campaign's sample."""
    svc = services()
    with svc.db.begin() as session:
        campaign = campaigns.get_campaign(session, campaign_id, lock=True)
        return {"released": frames.release_reserve(session, campaign, svc.clock(), actor=actor())}


@bp.get("/campaigns/<int:campaign_id>/sampling-report")
@bp.output(SamplingReportOut)
@requires(Permission.FRAMES_WRITE, "campaign")
def get_sampling_report(campaign_id: int) -> dict[str, Any] | Response:
    """Per agency × field stratum and in total: frame rows, eligible, excluded by reason,
    drawn, reserve and weight. ``?format=xlsx`` downloads it as a workbook instead."""
    svc = services()
    with svc.db.begin() as session:
        campaign = campaigns.get_campaign(session, campaign_id)
        if request.args.get("format") == "xlsx":
            path = sampling_report.write_sampling_report(session, campaign, svc.settings.export_dir, svc.clock())
            audit.record(session, actor(), "sampling_report_downloaded", svc.clock(),
                         target=f"campaign:{campaign_id}", agency_id=campaign.agency_id, file=path.name)
            return Response(path.read_bytes(), mimetype=XLSX,
                            headers={"Content-Disposition": f"attachment; filename={path.name}"})
        table = sampling_report.sampling_table(session, campaign)
    return {"campaign_id": campaign_id, "seed": campaign.sample_seed,
            "strata": json.loads(table.to_json(orient="records", force_ascii=False))}


@bp.get("/frames/template.xlsx")
@bp.doc(summary="Download the frame template", description="XLSX template of the accepted layout, in Vietnamese.")
@requires(None)
def frame_template() -> Response:
    return Response(sampling_report.frame_template(), mimetype=XLSX,
                    headers={"Content-Disposition": "attachment; filename=mau-danh-sach-ho-so.xlsx"})
