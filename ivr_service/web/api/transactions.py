"""The transaction feed: one-stop-shop systems report returned dossiers, one at a time or
in batches of up to 1,000. Each record is checked against the caller's agency scope."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from ...core.access import Permission
from ...services import transactions
from ..access import actor, principal, requires
from ..context import services
from ..errors import body
from .blueprint import bp
from .schemas import TransactionBatchIn, TransactionBatchOut, TransactionIn, TransactionOut


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
    if result.status == "error":   # a Response: the output schema would drop "detail"
        response = jsonify(body(result.message or "invalid", result.field))
        response.status_code = 422
        return response
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
