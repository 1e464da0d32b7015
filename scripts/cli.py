"""What every command-line tool here shares: one-line errors, exit codes, and atomic writes.

A tool is ``parse_args(argv) -> main(argv) -> work(args, data)``; :func:`run` turns the errors a
user can cause into one line on stderr and an exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from common.files import write_atomic
from scripts.results import ResultsError

__all__ = ["Parser", "prepare_out", "run", "write_atomic"]

#: Exit code for unusable input (missing or broken files, bad arguments). scripts.compare uses 1 for
#: "regression found", so 2 is kept for "could not decide".
EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line: ``prog: error: message (see --help)``."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def run(prog: str, main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Call ``main``; a :class:`ResultsError` or an unwritable output becomes one line and exit code 2."""
    try:
        return main(argv)
    except ResultsError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
    except OSError as exc:
        where = exc.filename or "output"
        print(f"{prog}: error: {where}: cannot write ({exc.strerror}); choose another --out", file=sys.stderr)
    return EXIT_USAGE


def prepare_out(folder: str | Path) -> Path:
    """The output folder, created if needed; a file in its place is a usage error."""
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise ResultsError(f"{out}: exists and is not a folder; give --out a folder path")
    out.mkdir(parents=True, exist_ok=True)
    return out


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table: a header and rows of cells (``|`` escaped, line breaks joined)."""
    clean = [[str(c).replace("|", "\\|").replace("\n", " ") for c in row] for row in rows]
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
        *("| " + " | ".join(row) + " |" for row in clean),
    ]
