"""The command line of a generated documentation page (docs/settings.md, docs/commands.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def generated_page_main(argv: list[str] | None, *, description: str, render: Callable[[], str], target: str) -> int:
    """Print the page, write it (``--out``), or with ``--check`` exit 1 when the file on disk is stale.

    ``target`` is the make target that regenerates it, named in the staleness message.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, help="write the page here (default: print it)")
    parser.add_argument("--check", action="store_true", help="exit 1 when --out differs from the generated page")
    args = parser.parse_args(argv)
    page = render()
    if args.out is None:
        sys.stdout.write(page)
        return 0
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != page:
            sys.stderr.write(f"{args.out} is stale: run `make {target}`\n")
            return 1
        return 0
    args.out.write_text(page, encoding="utf-8")
    return 0
