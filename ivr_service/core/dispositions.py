"""AAPOR final dispositions and response rates (REFERENCE §5)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .policy import Outcome

# Final outcome of a contact's last attempt -> AAPOR disposition code.
CODES: Mapping[Outcome | None, str] = {
    Outcome.COMPLETED: "1.1",
    Outcome.PARTIAL: "1.2",
    Outcome.REFUSED: "2.11",
    Outcome.BREAK_OFF: "2.12",
    Outcome.MACHINE: "3.14",
    Outcome.BUSY: "3.12",
    Outcome.NO_ANSWER: "3.13",
    Outcome.FAILED: "3.16",
    Outcome.CANCELED: "3.11",
    Outcome.INVALID_NUMBER: "4.30",
    None: "3.11",            # never attempted
}
OPTED_OUT = "2.11"           # on the do-not-contact list: an explicit refusal

LABELS = {
    "1.1": "complete", "1.2": "partial", "2.11": "refusal", "2.12": "break-off",
    "2.20": "non-contact", "2.30": "other", "3.11": "not attempted", "3.12": "always busy",
    "3.13": "no answer", "3.14": "answering machine", "3.16": "technical problems",
    "4.10": "out of sample", "4.20": "fax/data line", "4.30": "non-working number",
}


def group(code: str) -> str:
    """AAPOR group of a code: I, P, R, NC, O, UH (unknown), NE (not eligible)."""
    if code == "1.1":
        return "I"
    if code == "1.2":
        return "P"
    if code.startswith("2.1"):
        return "R"
    if code.startswith("2.2"):
        return "NC"
    if code.startswith("2.3"):
        return "O"
    if code.startswith("3."):
        return "UH"
    return "NE"


@dataclass(frozen=True)
class Rates:
    counts: Mapping[str, int]     # per group
    e: float                      # estimated eligible share of unknowns
    values: Mapping[str, float | None]


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def response_rates(codes: Iterable[str] | Mapping[str, int], e: float | None = None) -> Rates:
    """RR1–RR6, COOP1–4, REF1–3, CON1–3 from final disposition codes, one per case, or
    from a mapping of code to number of cases.

    ``e`` defaults to the eligible share among cases whose eligibility is known.
    """
    counts: Counter[str] = Counter()
    if isinstance(codes, Mapping):
        for code, n in codes.items():
            counts[group(code)] += n
    else:
        counts.update(group(code) for code in codes)
    # AAPOR's own letters for the disposition groups, so the formulas read as in the standard
    I, P, R, NC, O, U, NE = (counts[k] for k in ("I", "P", "R", "NC", "O", "UH", "NE"))  # noqa: E741
    if e is None:
        known = I + P + R + NC + O + NE
        e = (I + P + R + NC + O) / known if known else 1.0
    base = (I + P) + (R + NC + O)
    values = {
        "RR1": _ratio(I, base + U), "RR2": _ratio(I + P, base + U),
        "RR3": _ratio(I, base + e * U), "RR4": _ratio(I + P, base + e * U),
        "RR5": _ratio(I, base), "RR6": _ratio(I + P, base),
        "COOP1": _ratio(I, (I + P) + R + O), "COOP2": _ratio(I + P, (I + P) + R + O),
        "COOP3": _ratio(I, (I + P) + R), "COOP4": _ratio(I + P, (I + P) + R),
        "REF1": _ratio(R, base + U), "REF2": _ratio(R, base + e * U), "REF3": _ratio(R, base),
        "CON1": _ratio((I + P) + R + O, base + U), "CON2": _ratio((I + P) + R + O, base + e * U),
        "CON3": _ratio((I + P) + R + O, base),
    }
    return Rates(counts={k: counts[k] for k in ("I", "P", "R", "NC", "O", "UH", "NE")}, e=e,
                 values=values)
