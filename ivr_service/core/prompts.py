"""Where a scale's instructions are said: in full where they help, a short cue elsewhere.

Telephone surveys say how to answer once and then remind briefly; repeating the whole
scale after each of the 17 rated items made it about 40 % of a call. The rule, per call
(a resumed call starts afresh):

* in full the first time a scale is heard on the call, so before the first rated item
  and before the first item on any other scale;
* in full again after ``*`` (repeat), an invalid key, silence or a spoken answer not
  understood: whoever is unsure hears the whole scale;
* otherwise the scale's short cue ("Từ 1 đến 5."), or nothing if it has none;
* mode ``always`` says it in full before every item; ``first_per_factor`` also at the
  first item of each factor.

A scale without instructions keeps them in each item's own prompt, as before.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

from .questionnaire import Item, Text


class Why(StrEnum):
    """Why an item is being asked."""

    NEXT = "next"                  # the flow moved on to it
    AGAIN = "again"                # repeat, invalid key, silence, not understood, or a resent reply


def instructions_for(mode: str, item: Item, previous: Item | None, heard: Collection[str],
                     why: Why = Why.NEXT) -> Text | None:
    """The instructions to say after ``item``'s prompt.

    ``previous`` is the item asked just before on this call (None at the start of a
    call); ``heard`` the ids of the scales already explained on this call.
    """
    scale = item.scale
    if scale.instructions is None:
        return None
    full = (why is Why.AGAIN or mode == "always" or scale.id not in heard
            or (mode == "first_per_factor" and item.factor is not None
                and (previous is None or previous.section != item.section)))
    return scale.instructions if full else scale.cue


def spoken_number(number: str) -> str:
    """A phone number as a voice should say it: digit by digit, groups apart
    ("0261 3822" → "0 2 6 1, 3 8 2 2"), never as one large number."""
    groups = [group for group in number.replace(".", " ").replace("-", " ").split() if group]
    return ", ".join(" ".join(group) for group in groups)
