"""A campaign's frame and sample: upload a transaction list, read the preview (header row,
columns, every rejected row, exclusions), map the columns the reader did not recognise,
import and draw the sample, read the sampling report, release reserve waves.

The uploaded file waits between preview and import in the private upload store
(``services/frame_uploads.py``), named only by a random token kept in the session: a form
echoes the token, and a token that is not the session's for this campaign is refused. The
import itself is the API's (``frames.import_file``): synchronous, so the page posts it with
htmx and shows progress while it runs (a plain form post without JavaScript).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Response, current_app, flash, redirect, request, session
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from ...core.access import Permission
from ...services import audit, campaigns, frames, sampling_report
from ...services.errors import InvalidInput, ServiceError, invalid
from ...services.frame_reader import HEADERS, MissingColumns, recognise
from ...services.frame_uploads import GONE, Upload, UploadStore
from ..access import actor, principal, requires
from ..context import services
from ..errors import status_of
from . import bp, render

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SESSION_KEY = "frame_uploads"     # campaign id -> upload token
LISTED = 500                      # rejected rows listed on the page; the count is always whole
ENCODINGS = ("", "cp1258")        # "": UTF-8 or UTF-16, found by the reader

COLUMN_LABELS = {
    "transaction_code": _l("Dossier code"), "procedure": _l("Procedure"), "field": _l("Field (lĩnh vực)"),
    "agency": _l("Agency"), "name": _l("Applicant's name"), "phone": _l("Phone number"),
    "received_on": _l("Received on"), "due_on": _l("Due on"), "returned_on": _l("Result returned on"),
    "status": _l("Dossier status"),
}
EXCLUSION_LABELS = {
    "invalid_phone": _l("Phone number not usable"), "invalid_date": _l("Return date not readable"),
    "not_returned": _l("Result not returned yet"), "outside_period": _l("Returned outside the campaign's period"),
    "duplicate_phone": _l("Same phone as a more recent dossier"), "do_not_contact": _l("On the do-not-contact list"),
    "surveyed_recently": _l("Surveyed in the last 90 days"),
}
IGNORED_LABELS = {"above the header": _l("Above the header"), "blank row": _l("Blank row"),
                  "totals row": _l("Totals row"), "signature block": _l("Signature block below the table")}
RULE_LABELS = {"seed002": _l("tiers (≥500 → 150, 200–499 → 100, <200 → 30)"),
               "seed003": _l("shares of the frame by its size"), "slovin": _l("Slovin"),
               "cochran": _l("Cochran with finite-population correction"), "fixed": _l("fixed size"),
               "census": _l("census (everyone)")}


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {"column_label": lambda key: COLUMN_LABELS.get(key, key),
            "exclusion_label": lambda key: EXCLUSION_LABELS.get(key, key),
            "ignored_label": lambda key: IGNORED_LABELS.get(key, key)}


def uploads() -> UploadStore:
    """The upload store (``FRAME_UPLOAD_DIR`` in the app's config, else the system's
    temporary directory)."""
    return UploadStore(current_app.config.get("FRAME_UPLOAD_DIR"))


@dataclass(frozen=True)
class Column:
    """One header cell of the file and the field it is read as (``chosen``; "" for none)."""

    index: int
    header: str
    chosen: str
    named: bool        # chosen by a person (else recognised by its header, or not used)


def _owner() -> str:
    caller = principal()
    return f"{caller.kind}:{caller.id}"


def _remember(campaign_id: int, token: str | None) -> None:
    kept = dict(session.get(SESSION_KEY) or {})
    if token is None:
        kept.pop(str(campaign_id), None)
    else:
        kept[str(campaign_id)] = token
    session[SESSION_KEY] = kept


def _upload(campaign_id: int) -> Upload:
    """The upload the form names, if it is the one this session made for this campaign."""
    sent = request.form.get("upload", "")
    kept = (session.get(SESSION_KEY) or {}).get(str(campaign_id))
    if not sent or sent != kept:
        raise InvalidInput(GONE, field="upload")
    return uploads().get(sent, campaign_id=campaign_id, owner=_owner(), now=services().clock())


def _encoding(raw: str | None) -> str | None:
    value = (raw or "").strip()
    if value not in ENCODINGS:
        raise invalid("encoding", f"expected one of {', '.join(e or 'automatic' for e in ENCODINGS)}")
    return value or None


def _mapping(upload: Upload) -> dict[str, str]:
    """The columns a person chose in the form (``column-<n>`` for the n-th header cell)."""
    chosen: dict[str, str] = {}
    for index, header in enumerate(upload.headers):
        value = request.form.get(f"column-{index}", "")
        if not value:
            continue
        if value not in HEADERS:
            raise invalid("column", f"unknown field {value!r}")
        if value in chosen:
            raise invalid("column", _("%(field)s is chosen for two columns: %(first)s and %(second)s",
                                      field=COLUMN_LABELS[value], first=chosen[value], second=header))
        chosen[value] = header
    # A header the reader recognises as the field chosen needs no mapping.
    return {key: header for key, header in chosen.items() if recognise(header) != key}


def _columns(upload: Upload, found: dict[str, str] | None) -> list[Column]:
    """Each header cell with the field it is read as: a person's choice, else what the
    reader found (``found``: field -> header), else what its header names."""
    by_header = {header: key for key, header in (found or {}).items()}
    named = {header: key for key, header in upload.column_map.items()}
    columns = [Column(index, header, named.get(header) or by_header.get(header) or
                      ("" if found is not None else recognise(header) or ""), header in named)
               for index, header in enumerate(upload.headers)]
    # A header merged over two rows is named in the row above the header row.
    return columns + [Column(-1, header, key, False) for key, header in (found or {}).items()
                      if header not in upload.headers]


def _campaign(db_session: Session, campaign_id: int) -> dict[str, Any]:
    campaign = campaigns.get_campaign(db_session, campaign_id)
    try:
        rule = frames.agency_rule(campaign.agency)
        rule_text = str(RULE_LABELS.get(rule.kind, rule.kind)) + (f" (n = {rule.n})" if rule.n else "")
    except InvalidInput as exc:
        rule_text = exc.message
    return {"id": campaign.id, "name": campaign.name, "status": campaign.status.value, "agency": campaign.agency.name,
            "seed": campaign.sample_seed, "rule": rule_text, "refusal": frames.frame_refusal(db_session, campaign)}


def _page(campaign_id: int, status: int = 200, **context: Any) -> tuple[str, int]:
    """The page: the sampling report once there is a sample, else the upload form (and
    whatever preview or error ``context`` holds)."""
    svc = services()
    with svc.db.begin() as db_session:
        campaign = _campaign(db_session, campaign_id)
        table = sampling_report.sampling_table(db_session, campaigns.get_campaign(db_session, campaign_id))
    records = [{key: _plain(value) for key, value in row.items()} for row in table.to_dict("records")]
    strata, total = (records[:-1], records[-1]) if records else ([], None)
    context.setdefault("report", None)
    context.setdefault("columns", [])
    context.setdefault("upload", None)
    return render("console/frame.html", campaign=campaign, strata=strata, total=total, tab="frame",
                  reasons=sampling_report.REASONS, listed=LISTED, fields=list(HEADERS), **context), status


def _plain(value: object) -> object:
    """A pandas cell as Python: numpy numbers as numbers, NaN as None."""
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and math.isnan(value) else value


@bp.get("/campaigns/<int:campaign_id>/frame")
@requires(Permission.FRAMES_WRITE, target="campaign")
def frame(campaign_id: int) -> tuple[str, int]:
    return _page(campaign_id)


@bp.post("/campaigns/<int:campaign_id>/frame")
@requires(Permission.FRAMES_WRITE, target="campaign")
def preview_frame(campaign_id: int) -> tuple[str, int]:
    """Upload a file (or name the one uploaded, with columns mapped) and preview it."""
    svc = services()
    store = uploads()
    with svc.db.begin() as db_session:
        campaign = campaigns.get_campaign(db_session, campaign_id)
        refusal = frames.frame_refusal(db_session, campaign)
        period: tuple[date | None, date | None] = (campaign.period_start, campaign.period_end)
    if refusal is not None:
        return _page(campaign_id, 409, error=refusal)
    upload: Upload | None = None
    try:
        file = request.files.get("file")
        if file is not None and file.filename:
            encoding = _encoding(request.form.get("encoding"))
            upload = store.put(file.stream, campaign_id=campaign_id, owner=_owner(), file_name=file.filename,
                               now=svc.clock(), encoding=encoding)
            _remember(campaign_id, upload.token)
        elif request.form.get("upload"):
            upload = _upload(campaign_id)
            upload = store.update(upload, column_map=_mapping(upload),
                                  encoding=_encoding(request.form.get("encoding", upload.encoding or "")))
        else:
            raise invalid("file", _("choose a CSV or XLSX file to upload"))
        report = frames.preview_file(svc.db, store.path(upload), svc.clock(), encoding=upload.encoding,
                                     column_map=upload.column_map or None, max_rows=svc.settings.max_frame_rows,
                                     period=period)
    except MissingColumns as exc:
        assert upload is not None
        upload = store.update(upload, headers=exc.headers)
        return _page(campaign_id, 400, error=exc.message, upload=upload, columns=_columns(upload, None))
    except ServiceError as exc:
        return _page(campaign_id, 400, error=exc.message, upload=upload,
                     columns=_columns(upload, None) if upload is not None else [])
    upload = store.update(upload, headers=report.headers)
    return _page(campaign_id, report=report, upload=upload, columns=_columns(upload, report.columns))


@bp.post("/campaigns/<int:campaign_id>/frame/import")
@requires(Permission.FRAMES_WRITE, target="campaign")
def import_frame(campaign_id: int) -> Response | tuple[str, int]:
    """Import the previewed file with the columns as previewed and draw the sample with
    the agency's rule (the API's import: the same service, audit entry and seed)."""
    svc = services()
    upload: Upload | None = None
    try:
        upload = _upload(campaign_id)
        try:
            reserve = float((request.form.get("reserve") or "0").replace(",", ".")) / 100
            replicates = int(request.form.get("replicates") or 1)
        except ValueError:
            raise invalid("reserve", _("expected a number")) from None
        report = frames.import_file(svc.db, campaign_id, uploads().path(upload), None, int(svc.clock().timestamp()),
                                    svc.clock(), encoding=upload.encoding, column_map=upload.column_map or None,
                                    reserve_share=reserve, replicates=replicates,
                                    max_rows=svc.settings.max_frame_rows, actor=actor(), file_name=upload.file_name)
    except ServiceError as exc:
        return _page(campaign_id, status_of(exc), error=exc.message, upload=upload,
                     columns=_columns(upload, None) if upload is not None else [])
    uploads().discard(upload.token)
    _remember(campaign_id, None)
    flash(_("Imported %(rows)s rows: %(drawn)s drawn and %(reserve)s in reserve from %(eligible)s eligible.",
            rows=report.rows, drawn=report.drawn, reserve=report.reserve, eligible=report.eligible), "info")
    return redirect(f"/campaigns/{campaign_id}/frame", 303)   # type: ignore[return-value]


@bp.post("/campaigns/<int:campaign_id>/frame/release")
@requires(Permission.FRAMES_WRITE, target="campaign")
def release_reserve(campaign_id: int) -> Response | tuple[str, int]:
    """Release the next reserve wave (the API's service, with its audit entry)."""
    svc = services()
    try:
        with svc.db.begin() as db_session:
            campaign = campaigns.get_campaign(db_session, campaign_id, lock=True)
            released = frames.release_reserve(db_session, campaign, svc.clock(), actor=actor())
    except ServiceError as exc:
        return _page(campaign_id, status_of(exc), error=exc.message)
    flash(_("Released %(n)s reserve contacts; they are due now.", n=released), "info")
    return redirect(f"/campaigns/{campaign_id}/frame", 303)   # type: ignore[return-value]


@bp.get("/campaigns/<int:campaign_id>/frame/sampling-report.xlsx")
@requires(Permission.FRAMES_WRITE, target="campaign")
def sampling_report_xlsx(campaign_id: int) -> Response:
    """The sampling report as a workbook (as the API's ``?format=xlsx``, audited)."""
    svc = services()
    with svc.db.begin() as db_session:
        campaign = campaigns.get_campaign(db_session, campaign_id)
        path = sampling_report.write_sampling_report(db_session, campaign, svc.settings.export_dir, svc.clock())
        audit.record(db_session, actor(), "sampling_report_downloaded", svc.clock(),
                     target=f"campaign:{campaign_id}", agency_id=campaign.agency_id, file=path.name)
    return Response(path.read_bytes(), mimetype=XLSX,
                    headers={"Content-Disposition": f"attachment; filename={path.name}"})
