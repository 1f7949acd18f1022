"""Print the settings table generated from the pydantic Settings model, or update it in
the README between its markers.

    python tools/settings_table.py            # print the table
    python tools/settings_table.py --write    # update README.md
    python tools/settings_table.py --check    # exit 1 when README.md is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streams.settings_doc import replace_table, settings_table

README = Path(__file__).resolve().parent.parent / "README.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="update the README's table")
    group.add_argument("--check", action="store_true", help="fail if the README is stale")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    table = settings_table()
    if not (args.write or args.check):
        print(table)
        return 0
    text = args.readme.read_text(encoding="utf-8")
    updated = replace_table(text, table)
    if args.check:
        if updated != text:
            print(f"{args.readme}: settings table is out of date; run {sys.argv[0]} --write")
            return 1
        return 0
    args.readme.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
