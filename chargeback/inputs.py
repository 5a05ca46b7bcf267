"""A run's inputs: options checked, the workspace read, the contacts and orders loaded.

Everything here happens before a single figure is computed and nothing here
writes, so `report`, `check`, `explain`, `diff` and `journal` share one path
from a workspace and its options to checked, typed tables, and to the engine
that will sum them (SPEC 10).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from chargeback.data.sources import resolve_files
from chargeback.data.tables import CONTACTS, ORDERS, Loaded, format_of, load_contacts, load_orders
from chargeback.data.warehouse import load_db_table
from chargeback.engine.aggregates import Aggregates
from chargeback.engine.costing import unpriced_channels
from chargeback.engine.dates import MONTH
from chargeback.engine.engines import EngineChoice, choose, engine_errors
from chargeback.engine.engines import aggregate as engine_aggregate
from chargeback.errors import ChargebackError, Problem, UsageError, WorkspaceError
from chargeback.report import KNOWN_FORMATS, PDF_VARIANTS, ReportOptions, Steps
from chargeback.workspace.load import find_workspace, load_workspace
from chargeback.workspace.model import REQUIRED_CONTACT_COLUMNS, DbSource, Match, Rule, Workspace

if TYPE_CHECKING:  # imported where used: SQLGlot and the pushdown cost ~0.1 s to import
    from chargeback.engine.in_engine import InEngine, Then
    from chargeback.engine.pushdown_review import OneContact

# the loader's own columns (chargeback.data): a `fields` column of one of these names
# would collide with it as the contacts are typed
RESERVED_COLUMNS = (
    *("local", "date", "period", "hs_us", "text_lower", "_file", "_row", "_shape", "_last"),
    *("_utc", "_ts_text", "_is_bad", "_bad", "_check_dup"),
)
RESERVED_PREFIXES = ("_raw_", "_txt_", "_num_")


def check_period_options(opts: ReportOptions) -> None:
    for flag, value in (
        ("--period", opts.period),
        ("--from", opts.period_from),
        ("--to", opts.period_to),
    ):
        if value is not None and not MONTH.fullmatch(value):
            raise UsageError(f"{flag} '{value}' is not a month (YYYY-MM)")
    if opts.period and (opts.period_from or opts.period_to):
        raise UsageError("give either --period or --from/--to, not both")
    if (opts.period_from is None) != (opts.period_to is None):
        raise UsageError("--from and --to go together")
    if opts.period_from and opts.period_to and opts.period_from > opts.period_to:
        raise UsageError(f"--from {opts.period_from} is after --to {opts.period_to}")
    unknown = [f for f in opts.formats if f not in KNOWN_FORMATS]
    if unknown:
        raise UsageError(
            f"unknown --format {', '.join(unknown)} (choose from {', '.join(KNOWN_FORMATS)})"
        )
    if opts.templates is not None and not opts.templates.is_dir():
        raise UsageError(f"--templates '{opts.templates}' is not a folder")
    if not opts.formats:
        raise UsageError(f"--format is empty (choose from {', '.join(KNOWN_FORMATS)})")
    if opts.pdf_variant is not None and opts.pdf_variant not in PDF_VARIANTS:
        raise UsageError(
            f"unknown --pdf-variant '{opts.pdf_variant}' (choose from {', '.join(PDF_VARIANTS)})"
        )


def default_contacts(root: Path) -> str | None:
    """SPEC 1: a workspace's `contacts` entry, when chargeback.yaml does not name one."""
    if (root / "contacts").is_dir():
        return "contacts"
    for path in sorted(root.glob("contacts.*")):
        if path.is_file() and format_of(path) is not None:
            return path.name
    return None


def matches_of(rule: Rule) -> list[Match]:
    """Every condition a rule reads the contacts with: its match, and its control
    baseline's `control` and `evidence` (SPEC 4b), which need their columns too."""
    found = [rule.match]
    if rule.control is not None:
        found += [m for m in (rule.control.control, rule.control.evidence) if m is not None]
    return found


def rule_columns(ws: Workspace) -> set[str]:
    return {c for rule in ws.rules for m in matches_of(rule) for c in m.columns()}


def wanted_columns(ws: Workspace) -> set[str]:
    # reason and text feed the statements' evidence, tags `check`'s shape warnings;
    # customer_id, outcome and revenue the CS-value report
    cols = set(REQUIRED_CONTACT_COLUMNS) | {"handle_seconds", "reason", "text", "tags"}
    cols |= {"customer_id", "outcome", "revenue"}
    return cols | rule_columns(ws)


def prepare_orders(opts: ReportOptions, ws: Workspace, steps: Steps) -> Loaded | None:
    """SPEC 7's orders, when `--orders` or the `orders:` setting names them."""
    spec = opts.orders or ws.settings.orders
    if not spec:
        return None
    with steps.step("Loading orders"):
        if isinstance(spec, DbSource):
            mapping = {
                k.removeprefix("orders."): v
                for k, v in ws.settings.columns
                if k.startswith("orders.")
            }
            return load_db_table(
                ORDERS,
                spec,
                ws.root,
                mapping,
                set(ORDERS.required),
                ws.settings.timezone,
                ws.settings.timestamp_format,
                opts.on_bad_rows,
                sql_log=opts.sql_log,
            )
        return load_orders(
            ws.root if opts.orders is None else Path.cwd(),
            spec,
            dict(ws.settings.columns),
            ws.settings.timezone,
            ws.settings.timestamp_format,
            opts.on_bad_rows,
        )


def prepare(
    opts: ReportOptions, steps: Steps, review: bool = False, ws: Workspace | None = None
) -> tuple[Workspace, Loaded]:
    """Load and validate everything; nothing is written before this succeeds.

    `review`: only the columns check and explain read (the rules', reason, text,
    tags), not those the documents and the CS-value report need. `ws`: the
    workspace, when the caller has read it already.
    """
    ws, loaded, _ = prepare_ledger(opts, steps, review, ws=ws)
    return ws, loaded


def prepare_ledger(
    opts: ReportOptions,
    steps: Steps,
    review: bool = False,
    in_engine_ok: bool = False,
    ws: Workspace | None = None,
    then: Then | None = None,
) -> tuple[Workspace, Loaded, InEngine | None]:
    """prepare(), and the aggregates too when the engine can sum the contacts where they are.

    `in_engine_ok`: what the run needs per contact the engine can answer (`then`,
    on the same connection: engine/pushdown_extras.py), so on duckdb, postgres and
    spark only aggregates come back (engine/in_engine.py); otherwise, or when the
    engine's detector sees a row to refuse, the contacts are read.
    """
    check_period_options(opts)
    if ws is None:
        with steps.step("Reading rules"):
            ws = load_workspace(find_workspace(opts.workspace))
    choice = engine_of(opts, ws)  # an unknown engine or a missing driver stops the run here
    refuse_field_names(ws)
    wanted = wanted_columns(ws)
    spec, where = contacts_source(opts, ws)
    if in_engine_ok and spec and not review and choice.name in ("duckdb", "postgres", "spark"):
        from chargeback.engine.in_engine import in_engine  # SQLGlot: only when used

        with steps.step(f"Summing contacts in {choice.name}"), engine_errors(choice, ws):
            pushed = in_engine(ws, choice, spec, where, wanted, then)
        if pushed is not None:
            return ws, pushed.loaded, pushed
    loaded = read_out(opts, ws, steps, review)
    return ws, loaded, None


def contacts_source(opts: ReportOptions, ws: Workspace) -> tuple[str | DbSource | None, Path]:
    """The contacts `--contacts` or the workspace names (None: none found), and the
    folder a path in them is relative to (the current one for `--contacts`)."""
    spec = opts.contacts or ws.settings.contacts or default_contacts(ws.root)
    return spec, ws.root if opts.contacts is None else Path.cwd()


def contact_files(opts: ReportOptions, ws: Workspace) -> list[Path]:
    """The contacts' files as the run will read them, or none (a database source, or
    a setting the reading itself will refuse, in its words)."""
    spec, where = contacts_source(opts, ws)
    if not spec or isinstance(spec, DbSource):
        return []
    try:
        return resolve_files(spec, where)
    except ChargebackError:
        return []


def read_out(opts: ReportOptions, ws: Workspace, steps: Steps, review: bool = False) -> Loaded:
    """The contacts read into polars, with the columns the run (or check and explain) reads."""
    wanted = review_columns(ws) if review else wanted_columns(ws)
    loaded = contacts_for(opts, ws, wanted, steps)
    fields_missing = field_problems(ws, loaded)
    if fields_missing:
        raise WorkspaceError(fields_missing)
    return loaded


def review_columns(ws: Workspace) -> set[str]:
    """What check and explain read: not the CS-value report's columns, unless a rule's."""
    return wanted_columns(ws) - ({"customer_id", "outcome", "revenue"} - rule_columns(ws))


def _review_source(
    opts: ReportOptions, steps: Steps
) -> tuple[Workspace, EngineChoice, str | DbSource | None, Path]:
    """check's and explain's workspace, engine, and contacts when that engine can answer
    where they are (None: read them out), with the folder a path in them is relative to."""
    check_period_options(opts)
    with steps.step("Reading rules"):
        ws = load_workspace(find_workspace(opts.workspace))
    choice = engine_of(opts, ws)
    refuse_field_names(ws)
    spec, where = contacts_source(opts, ws)
    where = ws.root if isinstance(spec, DbSource) else where
    if not spec or choice.name not in ("duckdb", "postgres", "spark"):
        spec = None
    return ws, choice, spec, where


def one_contact_for(
    opts: ReportOptions, steps: Steps, contact_id: str
) -> tuple[Workspace, OneContact | None]:
    """The workspace, and on duckdb, postgres and spark the aggregates summed in the engine
    with only `contact_id`'s rows read out (engine/pushdown_review.py); None: read them all."""
    ws, choice, spec, where = _review_source(opts, steps)
    if spec is None:
        return ws, None
    from chargeback.engine.pushdown_review import one_contact  # SQLGlot: only when used

    with steps.step(f"Summing contacts in {choice.name}"):
        found = one_contact(
            ws, choice, spec, where, review_columns(ws), contact_id, opts.on_bad_rows
        )
    return ws, found


def counts_for(
    opts: ReportOptions, steps: Steps, value_columns: Callable[[Workspace], list[str]]
) -> tuple[Workspace, InEngine | None]:
    """The workspace, and on duckdb, postgres and spark the ledger's aggregates and check's
    counts computed in the engine (engine/pushdown_check.py); None: read the contacts out."""
    ws, choice, spec, where = _review_source(opts, steps)
    if spec is None:
        return ws, None
    from chargeback.engine.in_engine import in_engine  # SQLGlot and the drivers: only when used
    from chargeback.engine.pushdown_check import engine_counts

    wanted = review_columns(ws)
    values = [c for c in dict.fromkeys(value_columns(ws)) if c in wanted]  # the frame's
    then = partial(engine_counts, ws, values)
    try:
        with steps.step(f"Counting contacts in {choice.name}"):
            found = in_engine(ws, choice, spec, where, wanted, then)
    except (ChargebackError, NotImplementedError):
        return ws, None  # a refusal: the read-out path meets it in its order and words
    if found is None or found.extra is None:
        return ws, None
    found.extra.summed = found.aggregates
    return ws, found


def contacts_for(opts: ReportOptions, ws: Workspace, wanted: set[str], steps: Steps) -> Loaded:
    """The contacts `--contacts` or the workspace names, with the columns `wanted`."""
    root = ws.root
    spec, where = contacts_source(opts, ws)
    if not spec:
        raise WorkspaceError(
            Problem(
                "no contacts found: put them in contacts/ (or contacts.csv, .parquet, .ndjson), "
                "set 'contacts:' in chargeback.yaml, or pass --contacts",
                root,
            )
        )
    refuse_field_names(ws)
    settings = ws.settings
    with steps.step("Loading contacts"):
        read: Callable[..., Loaded] = (
            partial(load_db_table, CONTACTS, spec, root, sql_log=opts.sql_log)
            if isinstance(spec, DbSource)
            else partial(load_contacts, where, spec)
        )
        return read(
            dict(settings.columns),
            wanted,
            settings.timezone,
            settings.timestamp_format,
            opts.on_bad_rows,
            settings.tags_separator,
            values=settings.values,
            optional_columns=settings.optional_columns,
        )


def engine_of(opts: ReportOptions, ws: Workspace) -> EngineChoice:
    """SPEC 10: `--engine`, else the setting, else the contacts' address, else polars."""
    contacts = opts.contacts or ws.settings.contacts
    return choose(ws, opts.engine, contacts, opts.sql_log)


def aggregate(
    opts: ReportOptions, ws: Workspace, frame: pl.DataFrame, periods: set[str] | None = None
) -> Aggregates:
    """The grouped sums on the run's engine (identical Aggregates on every engine)."""
    return engine_aggregate(engine_of(opts, ws), ws, frame, periods)


def refuse_unpriced(ws: Workspace, contacts_by_channel: dict[str, int]) -> None:
    """SPEC 3: no contact is priced 0 by omission; report, diff and explain stop here."""
    unpriced = unpriced_channels(ws.costs, contacts_by_channel)
    if unpriced:
        raise WorkspaceError(unpriced)


def refuse_field_names(ws: Workspace) -> None:
    """Before any engine reads: a `fields` name the loader uses itself would collide with
    its column as the contacts are typed (and every engine must refuse alike)."""
    named = field_problems(ws, None)
    if named:
        raise WorkspaceError(named)


def field_problems(ws: Workspace, loaded: Loaded | None) -> list[Problem]:
    """Why a rule's `fields` column cannot be matched (SPEC 4: a workspace error); with
    no `loaded` contacts, only what its name alone says."""
    problems: list[Problem] = []
    for rule, match in ((r, m) for r in ws.rules for m in matches_of(r)):
        for name, _ in match.fields:
            reasons = []
            if loaded is not None and name in loaded.missing:
                files = ", ".join(p.name for p in loaded.missing[name])
                reasons.append(f"is not a column of the contacts ({files})")
            if name in ("started_at", "handle_seconds"):
                why = (
                    "use the rule's window for dates" if name == "started_at" else "it is a number"
                )
                reasons.append(f"cannot be matched as text; {why}")
            if name in RESERVED_COLUMNS or name.startswith(RESERVED_PREFIXES):
                reasons.append(
                    "is a name chargeback uses internally; "
                    "rename that column with columns: in chargeback.yaml"
                )
            line = dict(match.field_lines).get(name, rule.place.line if rule.place else 0)
            path = rule.place.path if rule.place else None
            problems += [
                Problem(f"rule '{rule.id}': match field '{name}' {r}", path, line) for r in reasons
            ]
    return problems
