"""Request and response schemas of the JSON API; the OpenAPI document is generated from them."""

from __future__ import annotations

from datetime import UTC

from apiflask import Schema
from apiflask.fields import AwareDateTime, Boolean, Date, DateTime, Dict, File, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from ...core.questionnaire import INSTRUCTION_MODES, LANGUAGES
from ...core.sampling import MAX_SAMPLE_SIZE, RULES
from ...services.campaigns import MAX_ID, MAX_RETENTION_DAYS
from ...services.frames import MAX_RECENT_DAYS, MAX_REPLICATES, MAX_SEED


class AgencyIn(Schema):
    code = String(required=True, validate=Length(1, 40), metadata={"description": "Short unique code"})
    name = String(required=True, validate=Length(1, 200))
    sample_rule = Dict(load_default=None, metadata={
        "description": "Sample-size rule: {kind: seed002|seed003|slovin|cochran|fixed|census, n, margin}"})
    parent_id = Integer(load_default=None, validate=Range(min=1, max=MAX_ID), metadata={
        "description": "The agency above it (province → department or district → commune); null: a root"})
    retention_days = Integer(load_default=None, validate=Range(min=1, max=MAX_RETENTION_DAYS), metadata={
        "description": "Days its closed campaigns keep citizens' personal data; null: SIPAS_RETENTION_DAYS"})


class AgencyPatchIn(Schema):
    retention_days = Integer(required=True, allow_none=True, validate=Range(min=1, max=MAX_RETENTION_DAYS),
                             metadata={"description": "Days its closed campaigns keep citizens' personal data; "
                                                      "null: back to SIPAS_RETENTION_DAYS"})


class AgencyOut(Schema):
    id = Integer()
    code = String()
    name = String()
    parent_id = Integer(allow_none=True)
    sample_rule = Dict(allow_none=True)
    retention_days = Integer(allow_none=True)
    created_at = DateTime()


class CampaignIn(Schema):
    agency_id = Integer(required=True, validate=Range(min=1, max=MAX_ID))
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
    speech_input = Boolean(load_default=False, metadata={
        "description": "Calls accept spoken answers (digits and the scale's words) as well as keys"})
    hotline = String(load_default=None, allow_none=True, metadata={
        "description": "The agency's line, said at the end of a call for citizens who want to say more"})


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
    speech_input = Boolean()
    hotline = String(allow_none=True)


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
    speech_input = Boolean()
    hotline = String(allow_none=True)
    rates = Dict(allow_none=True)
    sample_seed = Integer(allow_none=True)
    frame_size = Integer(allow_none=True)
    created_at = DateTime()
    started_at = DateTime(allow_none=True)
    completed_at = DateTime(allow_none=True)


class ActionIn(Schema):
    action = String(required=True, validate=OneOf(["start", "pause", "resume", "cancel"]))
    reason = String(load_default=None, validate=Length(1, 500), metadata={
        "description": "Why: recorded in the audit log; required to pause or cancel"})


class PreviewIn(Schema):
    file = File(required=True, metadata={"description": "CSV or XLSX transaction list"})
    encoding = String(load_default=None, metadata={"description": "e.g. cp1258 for legacy files"})
    columns = String(load_default=None, metadata={
        "description": 'JSON object mapping our column names to headers as written, e.g. {"phone": "ĐT di động"}'})


class FrameIn(PreviewIn):
    rule = String(load_default=None, validate=OneOf(list(RULES)),
                  metadata={"description": "Sample-size rule; default: the agency's rule (seed002 tiers)"})
    n = Integer(load_default=None, validate=Range(min=1, max=MAX_SAMPLE_SIZE))
    margin = Float(load_default=0.05, validate=Range(min=0.001, max=0.49))
    seed = Integer(load_default=None, validate=Range(min=0, max=MAX_SEED))
    reserve = Float(load_default=0.0, validate=Range(min=0, max=1),
                    metadata={"description": "Reserve pool as a share of the sample"})
    replicates = Integer(load_default=1, validate=Range(min=1, max=MAX_REPLICATES))
    recent_days = Integer(load_default=90, validate=Range(min=0, max=MAX_RECENT_DAYS),
                          metadata={"description": "Exclude numbers called in the last N days (0: off)"})


class FrameOut(Schema):
    rows = Integer()
    header_row = Integer()
    columns = Dict()
    ignored_rows = List(Dict())
    footer_rows = Integer(metadata={"description": "Rows of the signature block under the table, skipped"})
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


class ExpectedCallOut(Schema):
    longest_seconds = Float(metadata={"description": "expected length of the longest complete call"})
    shortest_seconds = Float()
    longest_minutes = Integer(metadata={"description": "started minutes"})
    shortest_minutes = Integer()
    longest_cost = Float(allow_none=True, metadata={"description": "started minutes × the \"*\" price, VND"})
    shortest_cost = Float(allow_none=True)


class CallCostsOut(Schema):
    currency = String()
    calls = Integer(metadata={"description": "connected calls (final status completed, a duration over 0 s)"})
    billed_minutes = Integer(metadata={"description": "every started minute of them"})
    mean_call_seconds = Float(allow_none=True)
    complete_calls = Integer(metadata={"description": "calls that completed the questionnaire"})
    mean_complete_seconds = Float(allow_none=True)
    completes = Integer(metadata={"description": "complete interviews (AAPOR 1.1)"})
    cost = Float(allow_none=True, metadata={"description": "VND, by each number's carrier; null without "
                                                           "SIPAS_VOICE_PRICES"})
    cost_per_complete = Float(allow_none=True)
    unpriced_calls = Integer(metadata={"description": "connected calls without a price for their carrier"})
    expected = Nested(ExpectedCallOut)


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
    calls = Nested(CallCostsOut, allow_none=True, metadata={
        "description": "Length and cost of the calls: observed, and expected from the call estimate; null with "
                       "calls=false"})


class ProgressQuery(Schema):
    calls = Boolean(load_default=True, metadata={
        "description": "Include the calls' length and cost. They read every connected call of the campaign (about "
                       "0.3–1.3 s at 300,000 on PostgreSQL) where the counts cost the same at any size"})


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
    ci_low = Float(allow_none=True)
    ci_high = Float(allow_none=True)
    weighted_index = Float(allow_none=True)
    n_criteria = Integer()
    n = Integer()
    respondents = Integer()


class ScoresOut(Schema):
    questionnaire = String()
    aggregation = String()
    n_respondents = Integer()
    service_index = Float(allow_none=True)
    service_ci_low = Float(allow_none=True)
    service_ci_high = Float(allow_none=True)
    weighted_service_index = Float(allow_none=True)
    overall = Nested(CriterionOut, allow_none=True)
    factors = List(Nested(FactorOut))
    criteria = List(Nested(CriterionOut))


class ScoresQuery(Schema):
    aggregation = String(load_default="mean_of_criteria", validate=OneOf(["mean_of_criteria", "pooled"]))
    field = String(load_default=None, validate=Length(max=200),
                   metadata={"description": "Only respondents of this field (lĩnh vực) of the sample"})
    ended_from = Date(load_default=None, data_key="from",
                      metadata={"description": "Only interviews that ended on or after this day (local)"})
    ended_to = Date(load_default=None, data_key="to",
                    metadata={"description": "Only interviews that ended on or before this day (local)"})


class ExportOut(Schema):
    name = String(metadata={"description": "the workbook's file name, campaign-<id>-<UTC time>.xlsx"})
    url = String(metadata={"description": "where to download it (GET, same credentials)"})


class QuestionnaireOut(Schema):
    key = String()
    title = String()
    version = Integer()
    rated_items = Integer()


class EstimateQuery(Schema):
    language = String(load_default="vi", validate=OneOf(list(LANGUAGES)))
    speech = Boolean(load_default=False, metadata={"description": "The campaign takes spoken answers: the "
                                                                  "speech hint is said"})
    hotline = String(load_default=None, validate=Length(1, 20), metadata={
        "description": "The agency's line said at the close, e.g. 1022"})
    agency = String(load_default=None, validate=Length(1, 200), metadata={
        "description": "The agency's name said in the intro; default a name of ordinary length"})
    instructions = String(load_default=None, validate=OneOf(list(INSTRUCTION_MODES)), metadata={
        "description": "Walk the call with this instruction mode instead of the questionnaire's (to compare)"})


class CallPathOut(Schema):
    choices = Dict(metadata={"description": "item → key, where the answer decides what is asked next"})
    items = List(String(), metadata={"description": "the items asked, in order"})
    says = List(String(), metadata={"description": "every text said, in order"})
    characters = Integer()
    audio_seconds = Float(metadata={"description": "recordings played"})
    unmeasured_audio = List(String(), metadata={"description": "items with a recording of unknown length, "
                                                               "counted by their text"})
    spoken_seconds = Float()
    call_seconds = Float(metadata={"description": "spoken + answer seconds per item"})
    minutes = Integer(metadata={"description": "started minutes"})
    cost = Float(allow_none=True, metadata={"description": "minutes × the \"*\" price, VND"})


class EstimateOut(Schema):
    questionnaire = String()
    language = String()
    instructions = String()
    speech = Boolean()
    hotline = String(allow_none=True)
    agency = String()
    speaking_rate = Float(metadata={"description": "characters a second (SIPAS_SPEAKING_RATE)"})
    answer_seconds = Float(metadata={"description": "per item (SIPAS_ANSWER_SECONDS)"})
    voice_items = Integer(metadata={"description": "items asked by telephone at all; 0: a web-only form"})
    currency = String()
    longest = Nested(CallPathOut)
    shortest = Nested(CallPathOut)


class GrantIn(Schema):
    role = String(required=True, validate=OneOf(["admin", "manager", "operator", "viewer"]))
    agency_id = Integer(load_default=None, validate=Range(min=1, max=MAX_ID), metadata={
        "description": "The agency node the role applies to, with its subtree; null: the whole installation"})


class GrantOut(Schema):
    role = String()
    agency_id = Integer(allow_none=True)


class UserIn(Schema):
    username = String(required=True, validate=Length(2, 60))
    password = String(required=True, validate=Length(10, 1000), load_only=True)
    display_name = String(load_default=None, validate=Length(1, 200))
    grants = List(Nested(GrantIn), load_default=[])


class UserPatchIn(Schema):
    password = String(validate=Length(10, 1000), load_only=True)
    active = Boolean()


class UserOut(Schema):
    id = Integer()
    username = String()
    display_name = String()
    active = Boolean()
    created_at = DateTime()
    last_login_at = DateTime(allow_none=True)
    grants = List(Nested(GrantOut))


class TokenIn(Schema):
    name = String(required=True, validate=Length(1, 200))
    scopes = List(String(), required=True, metadata={"description": "e.g. [\"campaigns:read\", \"exports:write\"]"})
    agency_id = Integer(load_default=None, validate=Range(min=1, max=MAX_ID),
                        metadata={"description": "The agency node (with its subtree) the token may act on"})
    expires_at = AwareDateTime(load_default=None, default_timezone=UTC,
                               metadata={"description": "ISO 8601; without an offset, UTC"})


class TokenOut(Schema):
    id = Integer()
    prefix = String(metadata={"description": "Visible part: the token starts with sipas_<prefix>_"})
    name = String()
    scopes = List(String())
    agency_id = Integer(allow_none=True)
    created_at = DateTime()
    expires_at = DateTime(allow_none=True)
    last_used_at = DateTime(allow_none=True)
    revoked_at = DateTime(allow_none=True)


class IssuedTokenOut(TokenOut):
    token = String(metadata={"description": "The whole token. Shown once; only its hash is stored"})


class AuditQuery(Schema):
    limit = Integer(load_default=100, validate=Range(min=1, max=1000))
    before_id = Integer(load_default=None, validate=Range(min=1, max=2**63 - 1))
    action = String(load_default=None, validate=Length(1, 60))
    actor = String(load_default=None, validate=Length(1, 120),
                   metadata={"description": "Part of the actor, any case: a username, `user:3`, `token:5`, `cli:`"})
    since = AwareDateTime(load_default=None, default_timezone=UTC,
                          metadata={"description": "Entries at or after this time (without an offset, UTC)"})
    until = AwareDateTime(load_default=None, default_timezone=UTC,
                          metadata={"description": "Entries before this time (without an offset, UTC)"})


class AuditOut(Schema):
    id = Integer()
    at = DateTime()
    actor = String()
    action = String()
    target = String(allow_none=True)
    agency_id = Integer(allow_none=True)
    address = String(allow_none=True)
    detail = Dict(allow_none=True)


class OptOutIn(Schema):
    phone = String(required=True, validate=Length(1, 40), metadata={"description": "e.g. 0912 345 678"})


class OptOutRemoveIn(OptOutIn):
    reason = String(load_default=None, validate=Length(max=500), metadata={
        "description": "Required: who asked to be surveyed again, and how (kept in the audit log)"})


class OptOutOut(Schema):
    phone = String(metadata={"description": "Masked: +84******678"})
    opted_out = Boolean()


class CitizenRequestIn(OptOutIn):
    reason = String(required=True, validate=Length(1, 500), metadata={
        "description": "Who asked, how and when (kept in the audit log)"})


class HeldOut(Schema):
    campaign_id = Integer()
    campaign = String()
    agency_id = Integer()
    status = String()
    disposition = String(allow_none=True)
    attempts = Integer()
    stored = String(metadata={"description": "plain, or hashed once purged or erased"})
    has_name = Boolean()
    has_code = Boolean()


class HoldingsOut(Schema):
    phone = String(metadata={"description": "Masked: +84******678"})
    opted_out = Boolean()
    opt_out_since = DateTime(allow_none=True)
    contacts = List(Nested(HeldOut))
    transactions = Integer()
    messages = Integer()
    inbound_messages = Integer()
    last_call_at = DateTime(allow_none=True)


class ErasedOut(Schema):
    phone = String(metadata={"description": "Masked: +84******678"})
    contacts = Integer()
    transactions = Integer()
    messages = Integer()
    inbound_messages = Integer()
    opt_outs = Integer()
    number_calls = Integer()
    number_messages = Integer()


class TransactionIn(Schema):
    """One returned dossier. Values are checked by the feed itself, so a batch and a single
    report give the same errors (422, naming the field)."""

    agency = String(load_default=None, metadata={"description": "The agency's code, e.g. STNMT"})
    code = String(load_default=None, metadata={"description": "Mã hồ sơ: the dossier code, unique per agency"})
    phone = String(load_default=None, metadata={"description": "The citizen's mobile number, e.g. 0912 345 678"})
    returned_at = String(load_default=None, metadata={
        "description": "When the result was returned, ISO 8601 (2026-11-17T09:30:00+07:00); without an offset "
                       "it is read in the programme's time zone"})
    procedure = String(load_default=None, metadata={"description": "Thủ tục"})
    field = String(load_default=None, metadata={"description": "Lĩnh vực"})
    officer = String(load_default=None, metadata={"description": "Handling officer (optional)"})


class TransactionOut(Schema):
    index = Integer()
    status = String(metadata={"description": "created | duplicate | error | not_stored"})
    decision = String(metadata={"description": "invited | not_sampled | opted_out | recent | no_programme"})
    transaction_id = Integer()
    field = String()
    message = String()


class IntakeOut(Schema):
    id = Integer(metadata={"description": "The record's place in the intake"})
    status = String(metadata={"description": "queued | decided"})
    received_at = DateTime()
    decided_at = DateTime()
    result = Nested(TransactionOut, metadata={"description": "Once decided: as POST /transactions answers "
                                                             "(without index)"})


class TransactionBatchIn(Schema):
    transactions = List(Dict(), required=True, validate=Length(1, 1000), metadata={
        "description": "Up to 1,000 records, each as in POST /transactions"})
    atomic = Boolean(load_default=False, metadata={
        "description": "Store nothing if any record is invalid (default: store the valid ones)"})


class TransactionBatchOut(Schema):
    counts = Dict(metadata={"description": "Records by status: created, duplicate, error, not_stored"})
    decisions = Dict(metadata={"description": "Created records by decision"})
    results = List(Nested(TransactionOut), metadata={"description": "One per record, in the order sent"})


class ProgrammePatchIn(Schema):
    """Only the fields sent change; null clears an optional one."""

    name = String(validate=Length(1, 200))
    questionnaire = String()
    share_mode = String(metadata={"description": "seed003 (the seed-003 share for the agency's yearly volume, "
                                                 "divided by expected_response) or fixed"})
    share = Float(allow_none=True, metadata={"description": "With share_mode fixed: the share invited, (0, 1]"})
    expected_response = Float(metadata={"description": "Expected response rate, (0, 1]; default 0.5"})
    seed = Integer(metadata={"description": "Salt of the per-transaction draw"})
    delay_minutes = Integer(metadata={"description": "Invite this long after the result is returned (0–10080)"})
    recent_days = Integer(metadata={"description": "Not if invited in the last N days, any agency (0–730)"})
    period = String(metadata={"description": "Reporting period: month | quarter | half"})
    timezone = String()
    window = Dict(allow_none=True, metadata={"description": "When messages may go; default 07:00–22:00 every day"})
    ends_on = Date(allow_none=True, metadata={"description": "Last day of returned transactions taken"})
    public_host = String(metadata={"description": "https host of the links; default SIPAS_SURVEY_BASE_URL"})
    link_days = Integer(metadata={"description": "Days a link stays valid (1–30)"})
    reminder_hours = Integer(allow_none=True, metadata={"description": "Remind once after N hours if never "
                                                                       "opened; null: no reminder"})
    max_segments = Integer(metadata={"description": "Most SMS segments a message may need (1–5)"})
    sender = String(allow_none=True, metadata={"description": "Brandname (≤ 11 characters) or E.164 number"})
    template = String(metadata={"description": "The invitation, with {link} and ending with {stop}; "
                                              "unaccented unless accented is true"})
    reminder_template = String(allow_none=True)
    channel_plan = List(Dict(), metadata={"description": 'Default [{"channel": "sms", "max_attempts": 1}]'})
    routing = List(Integer(), allow_none=True, metadata={
        "description": "Messaging account ids in the order tried (the agency's or installation-wide); "
                       "null: the installation's provider"})
    accented = Boolean(load_default=False, metadata={"description": "Keep the templates' diacritics (UCS-2)"})


class ProgrammeIn(ProgrammePatchIn):
    agency_id = Integer(required=True, validate=Range(min=1, max=MAX_ID))
    name = String(required=True, validate=Length(1, 200))
    questionnaire = String(load_default="sipas-2024")


class ProgrammeOut(Schema):
    id = Integer()
    agency_id = Integer()
    name = String()
    questionnaire_key = String()
    active = Boolean()
    share_mode = String()
    share = Float(allow_none=True)
    expected_response = Float()
    seed = Integer()
    delay_minutes = Integer()
    recent_days = Integer()
    period = String()
    timezone = String()
    window = Dict()
    ends_on = Date(allow_none=True)
    public_host = String()
    link_days = Integer()
    reminder_hours = Integer(allow_none=True)
    max_segments = Integer()
    sender = String(allow_none=True)
    template = String()
    reminder_template = String(allow_none=True)
    channel_plan = List(Dict())
    routing = List(Integer(), allow_none=True)
    created_at = DateTime()


class DeliverySummaryOut(Schema):
    messages = Integer()
    by_state = Dict(metadata={"description": "messages by delivery state (queued … delivered, failed, expired)"})
    by_reason = Dict(metadata={"description": "failed messages by reason (opted_out, not_mobile, unreachable …)"})
    link_opened = Integer(metadata={"description": "messages whose survey link was opened"})
    links_opened = Integer()
    reached = Integer(metadata={"description": "delivered by a trusted provider, or link opened"})
    delivered_unconfirmed = Integer(metadata={"description": "reported delivered by an untrusted provider, "
                                                             "link not opened"})


class PeriodCostOut(Schema):
    campaign_id = Integer()
    name = String()
    period_start = Date(allow_none=True)
    period_end = Date(allow_none=True)
    messages = Integer(metadata={"description": "messages the provider accepted"})
    segments = Integer()
    spent = Float(metadata={"description": "VND"})
    unpriced = Integer(metadata={"description": "accepted messages sent without a price table"})


class CurrentCostOut(Schema):
    campaign_id = Integer()
    label = String(allow_none=True)
    spent = Float()
    days_elapsed = Float()
    days_left = Float()
    daily_rate = Float(metadata={"description": "spent / days elapsed, VND per day"})
    forecast_rest = Float(metadata={"description": "daily_rate × days left, VND"})
    forecast_total = Float(metadata={"description": "spent + forecast_rest, VND"})


class CostsOut(Schema):
    currency = String()
    as_of = DateTime()
    messages = Integer()
    segments = Integer()
    spent = Float()
    unpriced = Integer()
    periods = List(Nested(PeriodCostOut))
    current_period = Nested(CurrentCostOut, allow_none=True)


class PeriodOut(Schema):
    campaign_id = Integer()
    name = String()
    label = String()
    period_start = Date()
    period_end = Date()
    status = String()
    contacts = Integer()
    by_status = Dict()
    by_disposition = Dict()
    rates = Dict(metadata={"description": "AAPOR response, cooperation, refusal and contact rates"})
    n_respondents = Integer()
    service_index = Float(allow_none=True)
    weighted_service_index = Float(allow_none=True)
    delivery = Nested(DeliverySummaryOut)
    cost = Nested(PeriodCostOut)


class MessagingAccountPatchIn(Schema):
    """Only the fields sent change; credentials replace the stored ones whole."""

    name = String(validate=Length(1, 200))
    sender = String(allow_none=True, metadata={"description": "Brandname (≤ 11 characters) or Zalo OA id"})
    base_url = String(allow_none=True, metadata={"description": "https API base URL; null: the kind's setting"})
    credentials = Dict(metadata={"description": "esms: api_key, secret_key. Write-only: never returned"})
    prices = Dict(metadata={"description": 'VND per segment by carrier, e.g. {"*": 300, "viettel": 250}'})
    trusted_delivery = Boolean(metadata={"description": "Whether this provider's 'delivered' can be believed"})


class MessagingAccountIn(MessagingAccountPatchIn):
    agency_id = Integer(allow_none=True, load_default=None, validate=Range(min=1, max=MAX_ID),
                        metadata={"description": "null: installation-wide (needs an installation-wide grant)"})
    kind = String(required=True, metadata={"description": "twilio | esms | zns | simulator"})
    name = String(required=True, validate=Length(1, 200))
    credentials = Dict(required=True)


class MessagingAccountOut(Schema):
    id = Integer()
    agency_id = Integer(allow_none=True)
    kind = String()
    name = String()
    sender = String(allow_none=True)
    base_url = String(allow_none=True)
    credentials_set = List(String(), metadata={"description": "Which credentials are set (never their values)"})
    prices = Dict()
    trusted_delivery = Boolean()
    active = Boolean()
    created_at = DateTime()
    updated_at = DateTime()


class AlertsQuery(Schema):
    limit = Integer(load_default=100, validate=Range(min=1, max=1000))
    before_id = Integer(load_default=None, validate=Range(min=1, max=2**63 - 1))


class AlertOut(Schema):
    id = Integer()
    agency_id = Integer()
    agency_code = String()
    agency_name = String()
    item_id = String(metadata={"description": "The criterion (C01…C16) or OVERALL"})
    text_vi = String()
    text_en = String(allow_none=True)
    questionnaire = String()
    period = String(metadata={"description": "2026-11, 2026-Q4 or 2026-H2"})
    n = Integer(metadata={"description": "Valid answers to the criterion in the period"})
    n_dissatisfied = Integer()
    share = Float(metadata={"description": "n_dissatisfied / n, above 0.25"})
    created_at = DateTime()
    email = String(metadata={"description": "sent, retrying, failed, pending or off"})
    email_sent_at = DateTime(allow_none=True)
    webhook = String(metadata={"description": "sent, retrying, failed, pending or off"})
    webhook_sent_at = DateTime(allow_none=True)
    attempts = Integer()
    url = String(metadata={"description": "The alert's console page"})


class ReportQuery(Schema):
    # Checked by the report service, so a wrong value answers 400 naming it, as the CLI and
    # the console say it.
    period = String(load_default=None, metadata={
        "description": "A month (2026-11), a quarter (2026-Q4) or a half-year (2026-H2); needed for an agency, "
                       "a campaign without one is reported whole"})
    lang = String(load_default="vi", metadata={"description": "vi (default) or en"})
