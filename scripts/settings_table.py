"""Write the README's settings table from the declarations in ivr_service/settings.py.

    .venv/bin/python scripts/settings_table.py           # rewrite the table in README.md
    .venv/bin/python scripts/settings_table.py --check   # exit 1 if README.md differs

An optional last argument names another README (the tests use it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr_service.settings import markdown_table  # noqa: E402

BEGIN = "<!-- settings-table:begin -->\n"
END = "<!-- settings-table:end -->"


def with_table(readme: str) -> str:
    head, begin, rest = readme.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise SystemExit(f"README: expected the markers {BEGIN.strip()} and {END}")
    return head + BEGIN + markdown_table() + END + tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if the README differs")
    parser.add_argument("readme", nargs="?", type=Path, default=ROOT / "README.md")
    args = parser.parse_args()
    current = args.readme.read_text(encoding="utf-8")
    wanted = with_table(current)
    if args.check:
        if current != wanted:
            print(f"{args.readme}: the settings table differs from ivr_service/settings.py; "
                  "run scripts/settings_table.py", file=sys.stderr)
            return 1
        return 0
    if current != wanted:
        args.readme.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
