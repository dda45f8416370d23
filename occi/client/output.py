"""How a command's result is printed: `-o table` (rich, fitted to the terminal), `json` and
`yaml` (the server's documents, or exactly the --columns asked), `csv` (a header, then rows)."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Table

from occi.client.failures import UsageFailure

FORMATS = ("table", "json", "yaml", "csv")
#: a table cell up to this long is never folded
FOLD_ABOVE = 19
#: the width of a table printed into a pipe or a file
UNBOUNDED = 4096


@dataclass
class Output:
    format: str = "table"
    columns: list[str] | None = None

    def emit(
        self,
        rows: Sequence[dict[str, Any]],
        default_columns: Sequence[str],
        docs: Any = None,
        single: bool = False,
    ) -> None:
        """Print `rows` (flat dicts) in the chosen format. `docs` is what json and yaml print
        without --columns (the server's documents; `rows` when None). `single`: one object,
        not a list (show, create, actions)."""
        columns = self._columns(rows, default_columns)
        if self.format in ("json", "yaml"):
            if self.columns or docs is None:
                data: Any = [{c: r.get(c) for c in columns} for r in rows]
                data = data[0] if single and data else data
            else:
                data = docs
            if self.format == "json":
                click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
            else:
                click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)
        elif self.format == "csv":
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(columns)
            for r in rows:
                writer.writerow([_cell(r.get(c)) for c in columns])
            click.echo(buf.getvalue(), nl=False)
        elif single and rows:
            self._fields(rows[0], columns)
        else:
            self._table(rows, columns)

    def _columns(self, rows: Sequence[dict[str, Any]], default: Sequence[str]) -> list[str]:
        if not self.columns:
            return list(default)
        known: set[str] = set(default)
        for r in rows:
            known.update(r)
        unknown = [c for c in self.columns if c not in known and rows]
        if unknown:
            raise UsageFailure(
                f"no column {', '.join(unknown)}: choose among {', '.join(sorted(known))}"
            )
        return list(self.columns)

    @staticmethod
    def _console() -> Console:
        """Fitted to the terminal; into a pipe or a file (no terminal, no COLUMNS), lines as
        long as they need, for grep and awk."""
        console = Console(soft_wrap=False, highlight=False)
        if not console.is_terminal and not os.environ.get("COLUMNS"):
            console = Console(soft_wrap=False, highlight=False, width=UNBOUNDED)
        return console

    def _table(self, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
        """Short values (up to FOLD_ABOVE characters: ids, states, sizes) are never cut; the
        long ones (titles, locations, messages) fold when the terminal is narrow. Default
        columns that still do not fit are left out, saying so on stderr (--columns chooses)."""
        console = self._console()
        widths = {}
        for c in columns:
            longest = max([len(_cell(r.get(c))) for r in rows] + [len(c)])
            widths[c] = longest if c in ("id", "name") else min(longest, FOLD_ABOVE)
        shown = list(columns)
        if not self.columns:
            while len(shown) > 1 and sum(widths[c] for c in shown) + 2 * len(shown) > console.width:
                shown.pop()
            left_out = [c for c in columns if c not in shown]
            if left_out:
                click.echo(
                    f"({', '.join(left_out)} left out: the terminal is too narrow; "
                    "choose with --columns)",
                    err=True,
                )
        # the columns asked for do not fit whole: rich folds them all, as it must
        fits = sum(widths[c] for c in shown) + 2 * len(shown) <= console.width
        table = Table(box=None, header_style="bold", pad_edge=False)
        for c in shown:
            if c in ("id", "name") and fits:  # what a person copies: never folded
                table.add_column(c.upper(), no_wrap=True, min_width=widths[c])
            else:
                table.add_column(c.upper(), overflow="fold", min_width=widths[c] if fits else None)
        for r in rows:
            table.add_row(*(_cell(r.get(c)) for c in shown))
        console.print(table)

    def _fields(self, row: dict[str, Any], columns: Sequence[str]) -> None:
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column("field", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        for c in columns:
            table.add_row(c, _cell(row.get(c)))
        self._console().print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
