"""The command line's shared parts: consoles, option types, error printing, progress.

cli.py holds the Typer app and its commands; what every command shares lives
here, so the app stays a thin shell. Nothing below run.py imports this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup, TyperOption

from chargeback.errors import ChargebackError, Problem, UsageError, display_path
from chargeback.report import Steps
from chargeback.workspace.load import SETTINGS_FILE


def _no_type_after_flags() -> None:
    """`--help <bool>`: typer 0.2x's rich help asks every option for its type
    (TyperOption.display_type_rich) and prints it, flags included, although a flag
    takes no value; click's plain help (get_help_record) skips flags. Skip them here
    too. A typer without that method (older ones skip booleans themselves) is left alone.
    """
    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "skips_flags", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        result: str | None = shown(self, ctx)
        return result

    display_type_rich.skips_flags = True  # type: ignore[attr-defined]
    setattr(TyperOption, "display_type_rich", display_type_rich)  # noqa: B010


_no_type_after_flags()

# Piped or cron output has no terminal width to fit: use a wide one so ids are never cut.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 132)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 132)


def existing_folder(value: Path | None) -> Path | None:
    """--workspace names a folder that is not there: a usage error (exit 2), like a bad month,
    caught before anything is read (a folder without rules/ stays a workspace error)."""
    if value is not None and not value.is_dir():
        what = "is a file, not a folder" if value.exists() else "no such folder"
        raise UsageError(f"--workspace '{value}': {what}")
    here = Path.cwd()
    if value is None and not (here / "rules").exists() and not (here / SETTINGS_FILE).exists():
        # never a silent sample: figures from Harborline must not pass for your own
        err.print(
            "Using the built-in sample workspace (Harborline Communications, invented data); "
            "start your own with: chargeback init DIR",
            markup=False,
            soft_wrap=True,
        )
    return value


WorkspaceOption = Annotated[
    Path | None,
    typer.Option(
        help="Workspace folder (default: ./ when it has rules/, else the sample).",
        callback=existing_folder,
    ),
]
ContactsOption = Annotated[
    str | None, typer.Option(help="Contacts file, glob or folder (overrides settings).")
]
OrdersOption = Annotated[
    str | None,
    typer.Option(help="Orders file, glob or folder for the CS-value report (overrides settings)."),
]
PeriodOption = Annotated[str | None, typer.Option(help="One month, YYYY-MM.")]
LastPeriodOption = Annotated[
    str | None,
    typer.Option(
        "--period",
        help="One month, YYYY-MM, or 'last' (the previous month in the workspace's time zone).",
    ),
]
FromOption = Annotated[str | None, typer.Option("--from", help="First month, YYYY-MM (with --to).")]
ToOption = Annotated[str | None, typer.Option("--to", help="Last month, YYYY-MM.")]
OutOption = Annotated[
    Path | None, typer.Option("--out", help="Output folder (default: settings' output).")
]


class TextOrJson(StrEnum):
    """--format for check, explain and diff."""

    text = "text"
    json = "json"


FormatOption = Annotated[
    TextOrJson,
    typer.Option("--format", help="text for people; json: exactly one JSON document on stdout."),
]
BadRowsOption = Annotated[
    str,
    typer.Option(
        help="stop: exit 1 naming each bad row. quarantine: set bad rows aside in "
        "rejected.csv (rejected_orders.csv) and go on.",
    ),
]
TemplatesOption = Annotated[
    Path | None,
    typer.Option(
        help="Folder of your own templates; any file it lacks comes from the built-in "
        "ones (see docs/templates.md).",
    ),
]
PdfVariantOption = Annotated[
    str | None,
    typer.Option(help="pdf/a-3b: archival PDF/A-3b documents (their figures embedded as CSV)."),
]

EngineOption = Annotated[
    str | None,
    typer.Option(
        help="Where the grouped sums run: polars, duckdb, postgres or spark "
        "(overrides the engine: setting; see docs/engines.md).",
    ),
]
ShowSqlOption = Annotated[
    bool,
    typer.Option(
        "--show-sql", help="Print each SQL statement as it is sent to the engine (to stderr)."
    ),
]
SampleDestArgument = Annotated[Path, typer.Argument(help="Folder to write the workspace into.")]
SampleSizeOption = Annotated[int, typer.Option(min=1, max=20_000_000, help="How many contacts.")]
SeedOption = Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")]
InitDestArgument = Annotated[
    Path | None,
    typer.Argument(help="Workspace folder: new or empty (with --from-export: default here)."),
]
FromExportOption = Annotated[
    Path | None,
    typer.Option(
        "--from-export",
        metavar="FILE",
        help="Your platform's export (CSV, Parquet, NDJSON): write a chargeback.yaml for it.",
    ),
]


class SqlEcho(list[str]):
    """--show-sql's log: each statement printed as it is sent, so a DBA sees what runs."""

    def append(self, statement: str) -> None:
        super().append(statement)
        err.print(
            f"-- sent to the engine\n{statement};", markup=False, highlight=False, soft_wrap=True
        )


def engine_options(engine: str | None, show_sql: bool) -> dict[str, Any]:
    """ReportOptions' engine fields from --engine and --show-sql."""
    return {"engine": engine, "sql_log": SqlEcho() if show_sql else None}


def version_callback(value: bool) -> None:
    """--version: print and stop before any command runs."""
    if value:
        from chargeback import __version__

        out.print(f"chargeback {__version__}")
        raise typer.Exit()


def print_undelivered(undelivered: list[tuple[str, str, str]]) -> None:
    """A send's failures, each with why, then exit 1: running again retries exactly these."""
    if not undelivered:
        return
    err.print(f"[bold red]error[/]: {len(undelivered)} not delivered:")
    for document, recipient, why in undelivered:
        err.print(f"  {escape(document)} to {escape(recipient)}: {escape(why)}", soft_wrap=True)
    err.print("Run the same command again to retry them; what was delivered is not sent twice.")
    raise typer.Exit(1)


def print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        err.print(f"[yellow]warning[/]: {escape(warning)}")


def parse_formats(text: str) -> tuple[str, ...]:
    """'pdf, csv' -> ('pdf', 'csv'); the library says which names it knows."""
    return tuple(f.strip() for f in text.split(",") if f.strip())


def print_plain(draw: Callable[[], str | None]) -> bool:
    """Text drawn by hand (terminal.summary_text), where standard output takes no colour
    or style and is UTF-8, so it reads exactly as rich would draw it (a cron run's case,
    without rich's cost); False: rich has to draw it."""
    plain = out.color_system is None and out.encoding.lower().startswith("utf")
    text = draw() if plain else None
    if text is not None:
        out.file.write(text)
    return text is not None


def interactive() -> bool:
    """Progress and colour only for a person at a terminal, never for cron."""
    return sys.stdout.isatty() and sys.stderr.isatty()


def in_file_order(problems: list[Problem]) -> list[Problem]:
    """Several problems at once read top to bottom: by file, then line (or row), stable.

    Problems without a place (hints, notes) keep their order after the placed ones.
    """

    def key(p: Problem) -> tuple[bool, str, int]:
        if p.path is None:
            return (True, "", 0)
        return (False, display_path(p.path), p.line or p.row or 0)

    return sorted(problems, key=key)


def fail(exc: ChargebackError) -> typer.Exit:
    code = 2 if isinstance(exc, UsageError) else 1
    problems = in_file_order(exc.problems)
    for problem in problems:
        label = (
            "[bold red]error[/]" if problem.severity == "error" else f"[cyan]{problem.severity}[/]"
        )
        # the message quotes user data and YAML: never let rich read it as markup
        err.print(f"{label}: {escape(str(problem))}", soft_wrap=True)
    problems = [p for p in problems if p.severity == "error"]
    if len(problems) > 1:
        err.print(f"{len(problems)} problems found; nothing was written.")
    elif code == 1:
        err.print("Nothing was written.")
    return typer.Exit(code)


def progress() -> Steps:
    """A spinner per step at a terminal; silence for cron."""
    if not interactive():
        return Steps()
    status = err.status("")

    def observe(name: str, seconds: float | None) -> None:
        if seconds is None:
            status.update(f"{name}…")
            status.start()
        else:
            status.stop()
            if seconds >= 1:
                err.print(f"[dim]{name}: {seconds:.1f} s[/]")

    return Steps(observe)


def print_json(doc: object) -> None:
    """Exactly one JSON document on stdout (SPEC 9): no rich wrapping, no markup."""
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


class SafeGroup(TyperGroup):
    """The last net under every command: whatever slips past the edge's checks ends
    as a message and exit code 1, never a traceback (CHARGEBACK_DEBUG=1 shows it).

    Commands turn known problems into located errors themselves (fail above);
    this only catches what nobody foresaw, and says so.
    """

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click Context
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException, SystemExit):
            raise  # usage errors and clean exits keep click's handling
        except ChargebackError as exc:
            raise fail(exc) from None
        except BrokenPipeError:  # `chargeback ... | head`: the reader has what it wanted
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None
        except KeyboardInterrupt:
            err.print("interrupted; nothing was written.")
            raise typer.Exit(130) from None
        except Exception as exc:
            if os.environ.get("CHARGEBACK_DEBUG"):
                raise
            raise fail(ChargebackError(unexpected(exc))) from None


def unexpected(exc: BaseException) -> Problem:
    """An exception no check caught, said as plainly as it can be."""
    if isinstance(exc, OSError):
        where = exc.filename if isinstance(exc.filename, str) else None
        return Problem(f"cannot read or write: {exc.strerror or exc}", where)
    if isinstance(exc, MemoryError):
        return Problem("out of memory: the input is too large for this machine")
    if isinstance(exc, RecursionError):
        return Problem("the input is nested too deeply to read")
    return Problem(
        f"unexpected internal error ({type(exc).__name__}: {str(exc)[:300]}). This is a bug in "
        "chargeback: please report it with the command you ran (CHARGEBACK_DEBUG=1 shows "
        "the traceback)"
    )
