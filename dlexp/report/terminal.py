"""Rich tables for dlexp-runs and dlexp-compare: fitted to a terminal, and at their full width
without trailing blanks when piped to a file, grep or a test."""

from __future__ import annotations

import io
import sys

from rich import box
from rich.console import Console
from rich.table import Table

PIPED_WIDTH = 10_000  # characters: a piped table is never wrapped


def rich_table(header: list[str], rows: list[list[str]], title: str = "") -> Table:
    table = Table(*header, box=box.SIMPLE_HEAD, show_edge=False, title=title or None)
    table.title_justify = "left"
    for row in rows:
        table.add_row(*row)
    return table


def show(*items) -> None:
    """Print rich tables and plain lines (str) in order."""
    if sys.stdout.isatty():
        console = Console(highlight=False)
        for item in items:
            console.print(item)
        return
    console = Console(width=PIPED_WIDTH, file=io.StringIO(), color_system=None, highlight=False)
    for item in items:
        console.print(item)
    print("\n".join(line.rstrip() for line in console.file.getvalue().splitlines()))
