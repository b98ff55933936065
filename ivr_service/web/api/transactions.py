"""The transaction feed: one-stop-shop systems report returned dossiers, one at a time or
in batches of up to 1,000, each checked against the caller's agency scope; or hand them to
the intake, which answers at once and decides them moments later (services/intake.py)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request, url_for

from ...core.access import Permission
from ...services import intake, transactions
from ...services.errors import NotFound
from ..access import actor, principal, requires
from ..context import services
from ..errors import body
from .blueprint import bp
from .schemas import IntakeOut, TransactionBatchIn, TransactionBatchOut, TransactionIn, TransactionOut


def _invalid(message: str, field: str | None) -> Response:
    """422 naming the field; a Response, since the output schema would drop "detail"."""
    response = jsonify(body(message, field))
    response.status_code = 422
    return response


@bp.post("/transactions")
@bp.input(TransactionIn, arg_name="data")
@bp.output(TransactionOut, status_code=201)
@bp.doc(summary="Report a returned dossier", description=(
    "201 when stored (with the programme's decision), 200 when the same agency and code was reported "
    "before (nothing changes; the stored decision is returned), 422 naming the field when the record is "
    "invalid (an unknown agency, or one outside the token's agency, answers alike)."),
    responses={200: "Already reported", 422: "Invalid record"})
@requires(Permission.TRANSACTIONS_WRITE)
def report_transaction(data: dict[str, Any]) -> Any:
    svc = services()
    now = svc.clock()
    with svc.db.begin() as session:
        result = transactions.report(session, now, [transactions.Record(**data)], source="api",
                                     caller=principal(), actor=actor()).results[0]
    if result.status == "error":
        return _invalid(result.message or "invalid", result.field)
    return TransactionOut().dump(result.to_dict()), 201 if result.status == "created" else 200


@bp.post("/transactions/batch")
@bp.input(TransactionBatchIn, arg_name="data")
@bp.output(TransactionBatchOut)
@bp.doc(summary="Report up to 1,000 returned dossiers", description=(
    "Every record is validated first. The valid ones are stored (or, with atomic, nothing is stored when "
    "any record is invalid); the answer says, per record in the order sent, whether it was created, a "
    "duplicate, an error (with the field) or not stored."))
@requires(Permission.TRANSACTIONS_WRITE)
def report_batch(data: dict[str, Any]) -> dict[str, Any]:
    svc = services()
    now = svc.clock()
    records = [transactions.Record.from_dict(item) for item in data["transactions"]]
    with svc.db.begin() as session:
        reported = transactions.report(session, now, records, source="api", caller=principal(), actor=actor(),
                                       atomic=data["atomic"])
    return reported.to_dict()


@bp.post("/transactions/intake")
@bp.input(TransactionIn, arg_name="data", validation=False)   # checked by intake.accept, as by the feed
@bp.output(IntakeOut, status_code=202)
@bp.doc(summary="Hand a returned dossier to the intake", description=(
    "202 once the record is stored for the worker to decide (usually within a few seconds), with its intake "
    "id and, in Location, where to read its outcome; 422 naming the field when a check that needs no lookup "
    "fails (fields, lengths, a mobile number, a readable time). The agency, the token's scope and a returned "
    "time in the future are checked when it is decided: the outcome then says created, duplicate or error, "
    "as POST /transactions does. For systems that report each dossier as it is returned, at a rate the "
    "direct route's per-request decision cannot follow."),
    responses={422: "Invalid record"})
@requires(Permission.TRANSACTIONS_WRITE)
def accept_transaction(data: dict[str, Any]) -> Any:
    svc = services()
    try:
        # One INSERT: atomic on its own, committed before the answer.
        with svc.db.autocommit() as conn:
            intake_id = intake.accept(conn, data, intake.Caller.of(principal(), request.remote_addr), svc.clock())
    except transactions.InvalidRecord as exc:
        return _invalid(exc.message, exc.field)
    response = jsonify({"id": intake_id, "status": "queued"})
    response.status_code = 202
    response.headers["Location"] = url_for("api_v1.transaction_outcome", intake_id=intake_id)
    return response


@bp.get("/transactions/intake/<int:intake_id>")
@bp.output(IntakeOut)
@bp.doc(summary="The outcome of a dossier handed to the intake", description=(
    "queued, or decided with the result POST /transactions gives (status created, duplicate or error; the "
    "decision; the transaction id; the field at fault). Only the caller that sent it can read it; outcomes "
    "are kept 7 days after the decision."), responses={404: "No such record for this caller"})
@requires(Permission.TRANSACTIONS_WRITE)
def transaction_outcome(intake_id: int) -> dict[str, Any]:
    svc = services()
    with svc.db.autocommit() as conn:
        found = intake.outcome(conn, intake_id, principal())
    if found is None:
        raise NotFound(f"intake record {intake_id} not found")
    return found.to_dict()
