"""Names that can be spoken and printed: agency and campaign names, agency codes.

The agency name is read aloud to every citizen in the call opening (``{agency}`` in the
questionnaire's intro) and both names are printed in the reports, so a name holds only

- letters of any script, Vietnamese precomposed or with combining tone marks,
- decimal digits,
- spaces (any Unicode space, such as the no-break space Word pastes, becomes a plain one),
- the punctuation of ordinary names: ``. , - – — ( ) [ ] / & ' ’ ‘ " “ ” : ; #``

at most 200 characters, with at least one letter or digit. Control and formatting
characters (line breaks, tabs, zero-width spaces), symbols (``< > = + @ | $ % * ~``) and
emoji are refused with a message naming the character. Names are returned stripped and
composed (NFC), as the frame reader composes the agency names of a transaction list.

An agency code is 1 to 40 of ``A–Z a–z 0–9 - _ .``: it appears in file names and logs.
"""

from __future__ import annotations

import re
import unicodedata

NAME_MAX_LENGTH = 200
NAME_PUNCTUATION = ".,-–—()[]/&'’‘\"“”:;#"
CODE_MAX_LENGTH = 40
_CODE = re.compile(r"[A-Za-z0-9._-]+")
_ALLOWED_SHOWN = "letters, digits, spaces and " + " ".join(NAME_PUNCTUATION)


def describe(char: str) -> str:
    """``'<' (U+003C LESS-THAN SIGN)``; control, format and space characters are named, not
    shown (a line break in a message would hide what it is)."""
    code = f"U+{ord(char):04X}"
    name = unicodedata.name(char, "")
    category = unicodedata.category(char)
    if category[0] in "CZ" and char != " ":
        kind = "a control character" if category == "Cc" else "not a printable character"
        return f"{code} {name}" if name else f"{code} ({kind})"
    return f"{char!r} ({code} {name})" if name else f"{char!r} ({code})"


def _allowed(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] in "LM" or category == "Nd" or char == " " or char in NAME_PUNCTUATION


def check_name(value: object, max_length: int = NAME_MAX_LENGTH) -> str:
    """``value`` as a name that can be spoken and printed (see the module docstring), or
    ValueError saying what is wrong with it."""
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}")
    name = unicodedata.normalize("NFC", value)
    name = "".join(" " if unicodedata.category(c) == "Zs" else c for c in name).strip()
    if not name:
        raise ValueError("required")
    if len(name) > max_length:
        raise ValueError(f"at most {max_length} characters, got {len(name)}")
    for position, char in enumerate(name, start=1):
        if not _allowed(char):
            raise ValueError(f"character {describe(char)} at position {position} is not allowed; "
                             f"a name may hold {_ALLOWED_SHOWN}")
    if not any(unicodedata.category(c)[0] == "L" or unicodedata.category(c) == "Nd" for c in name):
        raise ValueError(f"must contain at least one letter or digit, got {name!r}")
    return name


def check_code(value: object) -> str:
    """``value`` stripped, as an agency code: 1 to 40 of A–Z a–z 0–9 - _ . (ValueError otherwise)."""
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}")
    code = value.strip()
    if not code:
        raise ValueError("required")
    if len(code) > CODE_MAX_LENGTH:
        raise ValueError(f"at most {CODE_MAX_LENGTH} characters, got {len(code)}")
    if not _CODE.fullmatch(code):
        bad = next(c for c in code if not _CODE.fullmatch(c))
        raise ValueError(f"character {describe(bad)} is not allowed; a code holds letters A–Z, digits, - _ and .")
    return code
