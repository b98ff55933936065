"""The console's Vietnamese translations: check them and compile them.

    python scripts/i18n.py check      # every message of the console translated, .mo files current
    python scripts/i18n.py compile    # write each translations*/vi/LC_MESSAGES/messages.mo
    python scripts/i18n.py missing    # the messages no catalog translates yet, as .po entries

Messages are written in English in templates and code (``_("…")``, ``_l("…")``); each area
of the console keeps its Vietnamese catalog in its own directory
(``ivr_service/web/console/translations*/vi/LC_MESSAGES/messages.po``), merged at start-up.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
CONSOLE = ROOT / "ivr_service" / "web" / "console"
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None, "ngettext": (1, 2)}


def catalogs() -> list[Path]:
    return sorted(CONSOLE.glob("translations*/vi/LC_MESSAGES/messages.po"))


def used() -> set[str]:
    """Every message id the console's code and templates use."""
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(CONSOLE, METHODS, keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    return found


def compiled(po: Path) -> bytes:
    with po.open("rb") as handle:
        catalog = read_po(handle, locale="vi")
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


def problems() -> list[str]:
    found: list[str] = []
    translated: set[str] = set()
    for po in catalogs():
        with po.open("rb") as handle:
            catalog = read_po(handle, locale="vi")
        for message in catalog:
            if message.id and not message.string:
                found.append(f"{po.relative_to(ROOT)}: {message.id!r} has no translation")
            if message.id:
                translated.add(message.id if isinstance(message.id, str) else message.id[0])
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.read_bytes() != compiled(po):
            found.append(f"{mo.relative_to(ROOT)} is out of date: run python scripts/i18n.py compile")
    for message in sorted(used() - translated):
        found.append(f"no catalog translates {message!r}")
    return found


def main(command: str) -> int:
    if command == "compile":
        for po in catalogs():
            po.with_suffix(".mo").write_bytes(compiled(po))
        return 0
    if command == "missing":
        translated = set()
        for po in catalogs():
            with po.open("rb") as handle:
                translated |= {m.id for m in read_po(handle, locale="vi") if m.id}
        catalog = Catalog(locale="vi")
        for message in sorted(used() - translated):
            catalog.add(message, "")
        from babel.messages.pofile import write_po
        out = io.BytesIO()
        write_po(out, catalog, omit_header=True)
        sys.stdout.write(out.getvalue().decode())
        return 0
    if command == "check":
        found = problems()
        for problem in found:
            print(problem)
        return 1 if found else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ""))
