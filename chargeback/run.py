"""One report run: workspace -> contacts -> attribution -> ledger -> files.

The library never prints; it reports progress through a callback and returns
what it did, so the CLI (and tests) decide what the user sees.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from chargeback.data.tables import Loaded
from chargeback.engine.aggregates import Aggregates
from chargeback.engine.attribute import attribute
from chargeback.engine.dates import month_range
from chargeback.engine.in_engine import fingerprint_file
from chargeback.engine.ledger import build_ledger
from chargeback.engine.polars_engine import ledger_columns
from chargeback.errors import (
    ChargebackError,
    DataError,
    Problem,
    UsageError,
    WorkspaceError,
    display_path,
)
from chargeback.files import hash_early
from chargeback.inputs import (
    aggregate,
    check_period_options,
    contact_files,
    contacts_for,
    contacts_source,
    counts_for,
    engine_of,
    field_problems,
    one_contact_for,
    prepare,
    prepare_ledger,
    prepare_orders,
    read_out,
    refuse_unpriced,
    wanted_columns,
)
from chargeback.operations.closing import freeze, reopen, serve_closed
from chargeback.operations.lock import locked
from chargeback.report import Frozen, ReportOptions, RunResult, Steps
from chargeback.workspace.load import find_workspace, load_workspace
from chargeback.workspace.model import Workspace

if TYPE_CHECKING:  # each command imports its own: a csv report needs none of them (~0.1 s)
    from chargeback.operations.deliver import SendResult
    from chargeback.review.check import CheckReport
    from chargeback.review.diff import LedgerDiff


def select_periods(opts: ReportOptions, loaded: Loaded) -> list[str]:
    if opts.period:
        return [opts.period]
    if opts.period_from and opts.period_to:
        return month_range(opts.period_from, opts.period_to)
    return sorted(loaded.frame.get_column("period").unique().to_list())


def output_dir(opts: ReportOptions, ws: Workspace) -> Path:
    """--out, else the `output` setting: in the workspace when one was named, else here."""
    if opts.out is not None:
        return opts.out
    return ws.root / ws.settings.output if opts.workspace else Path.cwd() / ws.settings.output


def run_close(opts: ReportOptions, steps: Steps | None = None) -> tuple[Frozen, RunResult]:
    """Render the month as it stands and freeze it (closing.py)."""
    from chargeback.documents.ledger_files import refresh_index

    if opts.period is None:
        raise UsageError("close needs --period YYYY-MM")
    result = run_report(replace(opts, formats=("pdf", "html")), steps)
    with locked(result.out_dir):
        if opts.period in result.served.frozen:
            frozen = result.served.frozen[opts.period]
            raise ChargebackError(
                Problem(
                    f"{opts.period} is already closed (since {frozen.closed_at[:10]}); to change "
                    f"it: chargeback reopen --period {opts.period} --force",
                    frozen.folder,
                )
            )
        frozen = freeze(result)
        result.served.closed[opts.period] = frozen
        refresh_index(result, opts)  # the page the report step drew showed the month open
        return frozen, result


def run_reopen(opts: ReportOptions, force: bool) -> Path:
    if opts.period is None:
        raise UsageError("reopen needs --period YYYY-MM")
    if not force:
        raise UsageError(
            f"reopening {opts.period} changes figures finance has filed; "
            "add --force if that is what you mean (it is recorded)"
        )
    ws = load_workspace(find_workspace(opts.workspace))
    out = output_dir(opts, ws)
    with locked(out):
        return reopen(out, opts.period)


def last_month(opts: ReportOptions) -> ReportOptions:
    """`--period last` (report, value, send): the month before this one in the workspace's
    time zone, so a cron job on the 1st reports the month just ended."""
    if opts.period != "last":
        return opts
    from chargeback.operations.deliver import last_period

    ws = load_workspace(find_workspace(opts.workspace))
    return replace(opts, period=last_period(ws.settings.timezone))


def run_send(
    opts: ReportOptions,
    dry_run: bool = False,
    resend: bool = False,
    steps: Steps | None = None,
    environ: Mapping[str, str] = os.environ,
    sleep: Callable[[float], None] = time.sleep,
) -> SendResult:
    """Render the period's statements (or serve the frozen ones), then mail what is missing."""
    from chargeback.operations.deliver import send_period
    from chargeback.operations.smtp import configured_sender, smtp_settings

    # mail settings first: a bad one must not leave a month of fresh PDFs behind it
    ws = load_workspace(find_workspace(opts.workspace))
    configured_sender(ws, environ) if dry_run else smtp_settings(ws, environ)
    result = run_report(replace(opts, formats=("pdf",)), steps)
    return send_period(result, dry_run, resend, environ, sleep)


def run_journal(opts: ReportOptions, steps: Steps | None = None) -> tuple[Path, dict[str, Any]]:
    """<out>/<period>/journal.csv from the month's ledger (its frozen figures when closed)."""
    from chargeback.documents.ledger_files import JOURNAL_FILE
    from chargeback.files import write_files
    from chargeback.operations.journal import journal_csv, settings_problem

    if opts.period is None:
        raise UsageError("journal needs --period YYYY-MM")
    result = run_report(replace(opts, formats=("csv",), write=False), steps)
    problem = settings_problem(result.workspace)
    if problem is not None:
        raise WorkspaceError(problem)
    text, totals = journal_csv(result.workspace, result.ledger, opts.period)
    name = f"{opts.period}/{JOURNAL_FILE}"
    with locked(result.out_dir):
        write_files(result.out_dir, {name: text})
    totals["currency"] = result.ledger.currency
    totals["warnings"] = result.warnings
    return result.out_dir / name, totals


def run_check(opts: ReportOptions, steps: Steps | None = None) -> CheckReport:
    """SPEC 9's check: the workspace held against its data; writes nothing."""
    from chargeback.review.check import check, check_counts, value_columns

    steps = steps or Steps()
    ws, found = counts_for(opts, steps, value_columns)
    if found is not None:  # duckdb, postgres, spark: only counts left the engine
        loaded, contacts = found.loaded, found.loaded.rows or 0
        with steps.step("Checking rules against the data"):
            missing = _missing_columns(ws, loaded)
            report = check_counts(ws, found.extra, found.extra.values, missing)
    else:
        ws, loaded = prepare(opts, steps, review=True, ws=ws)
        contacts = loaded.frame.height
        with steps.step("Checking rules against the data"):
            report = check(ws, loaded.frame, missing=_missing_columns(ws, loaded))
    periods = sorted(loaded.frame.get_column("period").unique().to_list())
    span = f"{periods[0]} to {periods[-1]}" if periods else "no periods"
    counts = [(len(ws.departments), "department"), (len(ws.decisions), "decision")]
    counts.append((len(ws.rules), "rule"))
    what = ", ".join(f"{n} {word}{'s' if n != 1 else ''}" for n, word in counts)
    report.subject = (
        f"{display_path(ws.root)}: {what}; {contacts:,} "
        f"contact{'s' if contacts != 1 else ''} ({span})"
    )
    return report


def run_explain(opts: ReportOptions, contact_id: str, steps: Steps | None = None) -> dict[str, Any]:
    """SPEC 9's explain: one contact through the whole run's arithmetic; writes nothing."""
    from chargeback.review.explain import explain

    steps = steps or Steps()
    ws, found = one_contact_for(opts, steps, contact_id)
    if found is not None:  # duckdb, postgres, spark: summed in the engine, the contact read out
        from chargeback.engine.pushdown_review import month_only

        refuse_unpriced(ws, found.aggregates.contacts_by_channel())  # as report does
        rows = found.loaded.frame
        with steps.step("Attributing contacts"):
            months = set(rows.get_column("period").to_list())
            attribution = attribute(ws, month_only(found.aggregates, months))
        return explain(ws, rows, attribution, contact_id)
    ws, loaded = prepare(opts, steps, review=True, ws=ws)
    frame = loaded.frame
    channels = frame.group_by("channel").len().iter_rows()
    refuse_unpriced(ws, {str(ch): int(n) for ch, n in channels})  # as report does
    month = frame.filter(pl.col("contact_id") == contact_id).get_column("period").to_list()
    with steps.step("Attributing contacts"):  # the contact's month is all it needs
        attribution = attribute(ws, aggregate(opts, ws, frame, set(month)))
    return explain(ws, frame, attribution, contact_id)


# what an engine answers besides the ledger (attributions: a second pass, after the attribution)
IN_ENGINE = frozenset({"evidence", "value", "attributions"})


def report_needs(opts: ReportOptions) -> frozenset[str]:
    """What the run reads per contact besides the ledger's sums: the statements' evidence
    (and their leaky-rule notes), the CS-value report, attributions.parquet."""
    formats = set(opts.formats)
    needs = set()
    if formats & {"pdf", "html"} and not opts.value_only:
        needs.add("evidence")
    if opts.value_only or not formats <= {"csv", "attributions"}:
        needs.add("value")
    if "attributions" in formats:
        needs.add("attributions")
    return frozenset(needs)


def run_report(opts: ReportOptions, steps: Steps | None = None) -> RunResult:
    from chargeback.documents.book import read_book
    from chargeback.documents.ledger_files import run_metadata, write_outputs

    steps = steps or Steps()
    opts = last_month(opts)
    needs = report_needs(opts)
    check_period_options(opts)
    with steps.step("Reading rules"):
        ws = load_workspace(find_workspace(opts.workspace))
    if opts.write:  # the run's fingerprint hashes them: while the engine reads them
        hash_early(contact_files(opts, ws))
    then = None
    parts = needs - {"attributions"}  # what `then` answers on the ledger's connection
    if parts and needs <= IN_ENGINE:
        from chargeback.engine.pushdown_extras import engine_extras

        then = partial(engine_extras, ws, parts, bool(opts.orders or ws.settings.orders))
    ws, loaded, pushed = prepare_ledger(
        opts, steps, in_engine_ok=needs <= IN_ENGINE, ws=ws, then=then
    )
    if pushed is None and not needs:  # the ledger alone: the rest is let go before matching
        keep = ledger_columns(ws)
        loaded.frame = loaded.frame.select(c for c in loaded.frame.columns if c in keep)
    periods = select_periods(opts, loaded)
    contacts = loaded.frame if pushed is None else None  # what evidence and value read
    extras = None if pushed is None else pushed.extra
    if pushed is not None and extras is not None and extras.missing(parts):
        contacts = _read_again(opts, ws, steps, pushed.aggregates)  # a part not answered
    with steps.step("Attributing contacts"):
        aggregates = pushed.aggregates if pushed else aggregate(opts, ws, loaded.frame)
        if loaded.labels and pushed is None:  # a database source: fingerprinted as in-engine
            loaded.files = [fingerprint_file(aggregates)]
            loaded.labels = {loaded.files[0]: next(iter(loaded.labels.values()))}
        refuse_unpriced(ws, aggregates.contacts_by_channel())
        attribution = attribute(ws, aggregates)
        ledger = build_ledger(ws, attribution, periods)
    out_dir = output_dir(opts, ws)
    result = RunResult(ws, loaded, attribution, ledger, periods, out_dir)
    result.contacts, result.extras = contacts, extras
    result.warnings.extend(attribution.warnings)
    # closed months are served as closed; differences become adjustments (closing.py)
    result.served = serve_closed(result, open_periods_default=not (opts.period or opts.period_from))
    result.warnings.extend(result.served.warnings)
    # in the engine unless the contacts are here already (a part the engine did not answer)
    if contacts is None and "attributions" in needs and opts.write and not opts.value_only:
        result.attributions = _engine_attributions(opts, ws, result, steps)
        if result.attributions is None:
            contacts = result.contacts = _read_again(opts, ws, steps, aggregates)
    usual = output_dir(replace(opts, out=None), ws)
    elsewhere = opts.out is not None and usual.resolve() != out_dir.resolve()
    if elsewhere and (usual / "closed").is_dir() and not (out_dir / "closed").is_dir():
        result.warnings.append(
            f"months closed in {usual} do not apply to --out {out_dir}: closed months live "
            "in the output folder that closed them"
        )
    result.warnings.extend(_column_warnings(ws, loaded))
    if opts.value_only or not set(opts.formats) <= {"csv", "attributions"}:  # pdf, html, json
        result.orders = prepare_orders(opts, ws, steps)
        if result.orders is not None:
            result.warnings.extend(result.orders.warnings)
        from chargeback.engine.value import compute_value

        with steps.step("CS value"):
            value_source = contacts if extras is None or extras.value is None else extras.value
            assert value_source is not None  # read out above when the engine gave none
            result.value = compute_value(
                ws,
                value_source,
                result.orders.frame if result.orders else None,
                attribution,
                result.periods,
            )
            for period, frozen in result.served.frozen.items():
                if frozen.cs_value is not None:
                    result.value.periods[period] = frozen.cs_value
    result.meta = run_metadata(result, opts)
    if not opts.write:
        result.timings = steps.timings
        return result
    with locked(out_dir):
        # the folder's book, read (and refused when damaged) before anything is drawn
        book = None if opts.value_only else read_book(out_dir, ledger.currency)
        documents: dict[str, str | bytes] = {}
        if "pdf" in opts.formats or "html" in opts.formats:
            from chargeback.documents.compose import render_documents

            documents = render_documents(result, opts, steps, book)
        with steps.step("Writing outputs"):
            result.written = write_outputs(result, opts, documents, book)
    result.timings = steps.timings
    return result


def run_diff(
    old: str, new: str, opts: ReportOptions, steps: Steps | None = None
) -> tuple[LedgerDiff, list[str]]:
    """SPEC 9's diff: the ledgers of two rule sets on the workspace's settings and contacts.

    Each side is the ledger `report` computes with that rule set (closed months as
    the rules compute them, not as filed). The contacts are read once, with the
    columns both rule sets need, unless the rule sets carry settings that read them
    differently. Nothing is written; a revision's temporary copy is removed.
    """
    from chargeback.review.diff import compare
    from chargeback.review.revisions import RuleSet, relabel, resolve_rule_set

    check_period_options(opts)
    steps = steps or Steps()
    root = find_workspace(opts.workspace)
    sets: list[RuleSet] = []
    with ExitStack() as stack:
        try:
            with steps.step("Reading rules"):
                for given in (old, new):
                    sets.append(resolve_rule_set(given, root, stack))
                sides = [load_workspace(root, s.folder) for s in sets]
            if sides[0].settings == sides[1].settings:
                wanted = wanted_columns(sides[0]) | wanted_columns(sides[1])
                loads = [contacts_for(opts, sides[0], wanted, steps)] * 2
            else:
                loads = [contacts_for(opts, ws, wanted_columns(ws), steps) for ws in sides]
            pairs = list(zip(sides, loads, strict=True))
            problems = [p for ws, ld in pairs for p in field_problems(ws, ld)]
            if problems:
                raise WorkspaceError(problems)
            periods = sorted({p for ld in loads for p in select_periods(opts, ld)})
            ledgers, warnings = [], []
            with steps.step("Attributing contacts"):
                for ws, ld in pairs:
                    aggregates = aggregate(opts, ws, ld.frame)
                    refuse_unpriced(ws, aggregates.contacts_by_channel())
                    attribution = attribute(ws, aggregates)
                    ledgers.append(build_ledger(ws, attribution, periods))
                    warnings.append(attribution.warnings + _column_warnings(ws, ld))
        except ChargebackError as exc:
            raise relabel(exc, sets) from None
    labels = (sets[0].label, sets[1].label)
    departments = {d.id for ws in sides for d in ws.departments}
    notes = [w for w in warnings[0] if w in warnings[1]]
    for label, side, other in ((labels[0], *warnings), (labels[1], *warnings[::-1])):
        notes += [f"{label}: {w}" for w in side if w not in other]
    if ledgers[0].currency != ledgers[1].currency:
        notes.append(f"the currency changes from {ledgers[0].currency} to {ledgers[1].currency}")
    return compare(ledgers[0], ledgers[1], departments, labels), notes


def _read_again(
    opts: ReportOptions, ws: Workspace, steps: Steps, summed: Aggregates
) -> pl.DataFrame:
    """The contacts read out after the engine summed them, for a part it did not answer;
    refused when they are not the contacts it summed (a table loaded during the run):
    the documents would not add up to the ledger."""
    frame = read_out(opts, ws, steps).frame
    want: Counter[tuple[str, str]] = Counter()
    handle: Counter[tuple[str, str]] = Counter()
    for g in summed.groups:
        want[g.period, g.channel] += g.contacts
        handle[g.period, g.channel] += g.handle_us
    months = sorted({p for p, _ in want})
    got = (
        frame.filter(pl.col("period").is_in(months))
        .group_by("period", "channel")
        .agg(pl.len().alias("n"), pl.col("hs_us").cast(pl.Int128).sum().alias("hs"))
    )
    seen = {(p, c): (int(n), int(hs or 0)) for p, c, n, hs in got.iter_rows()}
    if seen != {k: (want[k], handle[k]) for k in want}:
        raise DataError(
            Problem(
                "the contacts changed while this run read them (rows added, removed or "
                "edited between the engine's sums and the read-out): run it again"
            )
        )
    return frame


def _engine_attributions(
    opts: ReportOptions, ws: Workspace, result: RunResult, steps: Steps
) -> pl.DataFrame | None:
    """attributions.parquet's rows computed in the engine, a second pass on the source the
    in-engine ledger read (engine/pushdown_attributions.py); None: read the contacts out."""
    from chargeback.engine.pushdown_attributions import engine_attributions

    choice = engine_of(opts, ws)
    spec, where = contacts_source(opts, ws)  # as prepare_ledger's
    if not spec:
        return None
    with steps.step(f"Attributions in {choice.name}"):
        return engine_attributions(
            ws, choice, spec, where, wanted_columns(ws), result.attribution, result.periods
        )


def _missing_columns(ws: Workspace, loaded: Loaded) -> list[str]:
    """Match keys on a column the contacts lack (fields: is an error, in field_problems)."""
    fields = {f for r in ws.rules for f, _ in r.match.fields}
    return [
        name
        for name in sorted(loaded.missing)
        if any(name in r.match.columns() for r in ws.rules) and name not in fields
    ]


def _column_warnings(ws: Workspace, loaded: Loaded) -> list[str]:
    """What the data's shape means for the run: files skipped for having no rows, absent columns."""
    return list(loaded.warnings) + [
        f"the contacts have no '{name}' column, so rules matching on it match nothing"
        for name in _missing_columns(ws, loaded)
    ]
