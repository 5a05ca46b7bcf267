"""The chargeback command line: parse, call the library, turn errors into exit codes.

Exit codes: 0 success, 1 a user error (bad rules, bad data; the message names
the place), 2 a usage error (options that do not fit).
"""

from __future__ import annotations

from typing import Annotated

import typer

from chargeback.console import (
    BadRowsOption,
    ContactsOption,
    EngineOption,
    FormatOption,
    FromExportOption,
    FromOption,
    InitDestArgument,
    LastPeriodOption,
    OrdersOption,
    OutOption,
    PdfVariantOption,
    PeriodOption,
    SafeGroup,
    SampleDestArgument,
    SampleSizeOption,
    SeedOption,
    ShowSqlOption,
    TemplatesOption,
    TextOrJson,
    ToOption,
    WorkspaceOption,
    engine_options,
    fail,
    interactive,
    out,
    parse_formats,
    print_json,
    print_plain,
    print_undelivered,
    print_warnings,
    progress,
    version_callback,
)
from chargeback.documents.wording import plural
from chargeback.errors import ChargebackError, UsageError, display_path
from chargeback.inputs import check_period_options
from chargeback.report import ReportOptions, RunResult
from chargeback.run import (
    run_check,
    run_close,
    run_diff,
    run_explain,
    run_journal,
    run_reopen,
    run_report,
    run_send,
)
from chargeback.terminal import (
    SUMMARY_TOP,
    check_view,
    explain_lines,
    report_done,
    send_done,
    summary_tables,
    summary_text,
    value_done,
    value_table,
)

app = typer.Typer(
    name="chargeback",
    help="Charge the customer-service cost of business decisions back to the departments "
    "that made them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    cls=SafeGroup,
)


@app.callback(
    epilog="[bold]Examples[/]\n\n"
    "  chargeback report                 # the built-in sample workspace, or ./rules\n\n"
    "  chargeback init acme              # start your own workspace\n\n"
    "  chargeback check --workspace acme # validate rules and contacts",
)
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=version_callback,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Charge the customer-service cost of business decisions back to their owners."""


@app.command(
    epilog="[bold]Examples[/]\n\n"
    "  chargeback report                                  # the sample workspace, or ./rules\n\n"
    "  chargeback report --workspace acme --period 2026-03\n\n"
    "  chargeback report --period last --all              # last month, every decision\n\n"
    "  chargeback report --from 2026-01 --to 2026-06 --format csv --out /srv/chargeback\n\n"
    "  chargeback report --period 2026-03 --format pdf --pdf-variant pdf/a-3b\n\n"
    "  chargeback report --templates my_templates   # your own look (docs/templates.md)\n\n"
    "  chargeback report --contacts 'exports/2026-03/*.csv' --on-bad-rows quarantine",
)
def report(
    workspace: WorkspaceOption = None,
    contacts: ContactsOption = None,
    period: LastPeriodOption = None,
    period_from: FromOption = None,
    period_to: ToOption = None,
    out_dir: OutOption = None,
    formats: Annotated[
        str, typer.Option("--format", help="Comma-separated: pdf, html, csv, json, attributions.")
    ] = "pdf,html,csv,json",
    on_bad_rows: BadRowsOption = "stop",
    orders: OrdersOption = None,
    templates: TemplatesOption = None,
    pdf_variant: PdfVariantOption = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="List every decision in the summary, not the top 5.")
    ] = False,
    engine: EngineOption = None,
    show_sql: ShowSqlOption = False,
) -> None:
    """Attribute contacts to decisions; write the ledger, statements, summary and CS value."""
    result = _run(
        ReportOptions(
            workspace=workspace,
            contacts=contacts,
            orders=orders,
            period=period,
            period_from=period_from,
            period_to=period_to,
            out=out_dir,
            formats=parse_formats(formats),
            on_bad_rows=on_bad_rows,
            templates=templates,
            pdf_variant=pdf_variant,
            **engine_options(engine, show_sql),
        )
    )
    top = None if show_all else SUMMARY_TOP
    if not print_plain(lambda: summary_text(result.ledger, top, out.width)):
        for table in summary_tables(result.ledger, interactive(), top, out.width):
            out.print(table)
            out.print()
    for line in report_done(result):
        out.print(line, markup=False)


def _run(opts: ReportOptions) -> RunResult:
    """Run, print the warnings; a user error becomes its message and exit code."""
    if opts.on_bad_rows not in ("stop", "quarantine"):
        raise fail(
            UsageError(f"--on-bad-rows must be stop or quarantine, not '{opts.on_bad_rows}'")
        )
    try:
        result = run_report(opts, progress())
    except ChargebackError as exc:
        raise fail(exc) from None
    print_warnings(result.warnings)
    return result


@app.command(
    epilog="[bold]Examples[/]\n\n"
    "  chargeback value                              # the sample workspace, or ./rules\n\n"
    "  chargeback value --workspace acme --period 2026-03 --orders exports/orders.csv\n\n"
    "  chargeback value --from 2026-01 --to 2026-06 --format json",
)
def value(
    workspace: WorkspaceOption = None,
    contacts: ContactsOption = None,
    orders: OrdersOption = None,
    period: LastPeriodOption = None,
    period_from: FromOption = None,
    period_to: ToOption = None,
    out_dir: OutOption = None,
    formats: Annotated[
        str, typer.Option("--format", help="Comma-separated, any of: pdf, html, json.")
    ] = "pdf,html,json",
    on_bad_rows: BadRowsOption = "stop",
    templates: TemplatesOption = None,
    pdf_variant: PdfVariantOption = None,
) -> None:
    """What customer service is worth: cs_value.json and the CS-value report per month."""
    chosen = parse_formats(formats)
    ledger_only = [f for f in chosen if f in ("csv", "attributions")]
    if ledger_only:
        why = f"{ledger_only[0]} is the ledger's"
        raise fail(UsageError(f"chargeback value writes pdf, html and json; {why}"))
    result = _run(
        ReportOptions(
            workspace=workspace,
            contacts=contacts,
            orders=orders,
            period=period,
            period_from=period_from,
            period_to=period_to,
            out=out_dir,
            formats=chosen,
            on_bad_rows=on_bad_rows,
            templates=templates,
            pdf_variant=pdf_variant,
            value_only=True,
        )
    )
    table = value_table(result)
    if table is not None:
        out.print(table)
    for line in value_done(result):
        out.print(line, markup=False)


@app.command(
    epilog="[bold]Examples[/]\n\n"
    "  chargeback send --period last                    # cron, on the 1st of the month\n\n"
    "  chargeback send --period 2026-03 --dry-run       # write .eml files, send nothing\n\n"
    "  chargeback send --workspace acme --period 2026-03 --resend",
)
def send(
    period: Annotated[
        str, typer.Option(help="The month to send, YYYY-MM, or 'last' (the previous month).")
    ],
    workspace: WorkspaceOption = None,
    contacts: ContactsOption = None,
    out_dir: OutOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Write the messages as .eml files; send nothing.")
    ] = False,
    resend: Annotated[
        bool, typer.Option("--resend", help="Send again what was delivered before.")
    ] = False,
    templates: TemplatesOption = None,
) -> None:
    """Mail each department its statement and the summary; only what was not delivered before.

    Exit code 1 names every message that was not delivered; run again to retry them.
    """
    if period != "last":
        try:
            check_period_options(ReportOptions(period=period))
        except ChargebackError as exc:
            raise fail(exc) from None
    try:
        result = run_send(
            ReportOptions(
                workspace=workspace,
                contacts=contacts,
                period=period,
                out=out_dir,
                templates=templates,
            ),
            dry_run=dry_run,
            resend=resend,
            steps=progress(),
        )
    except ChargebackError as exc:
        raise fail(exc) from None
    print_warnings(result.warnings)
    out.print(send_done(result, dry_run), markup=False)
    print_undelivered(result.undelivered)


@app.command(
    epilog="[bold]Examples[/]\n\n"
    "  chargeback close --period 2026-03\n\n"
    "  chargeback close --workspace acme --period 2026-03 --out /srv/chargeback",
)
def close(
    period: Annotated[str, typer.Option(help="The month to close, YYYY-MM.")],
    workspace: WorkspaceOption = None,
    contacts: ContactsOption = None,
    out_dir: OutOption = None,
    templates: TemplatesOption = None,
) -> None:
    """Freeze a month: its ledger lines and documents stay as they are from now on.

    Later runs serve the frozen figures; a change in the data is posted as a
    prior-period adjustment in the first open month.
    """
    try:
        check_period_options(ReportOptions(period=period))
        frozen, result = run_close(
            ReportOptions(
                workspace=workspace,
                contacts=contacts,
                period=period,
                out=out_dir,
                templates=templates,
            ),
            progress(),
        )
    except ChargebackError as exc:
        raise fail(exc) from None
    print_warnings(result.warnings)
    out.print(
        f"Closed {period}: {plural(len(frozen.lines), 'ledger line')}, "
        f"{plural(len(frozen.files), 'document')}, "
        f"{frozen.summary.cost:.2f} {result.ledger.currency}, frozen in "
        f"{display_path(frozen.folder)}",
        markup=False,
    )


@app.command(
    epilog="[bold]Examples[/]\n\n  chargeback reopen --period 2026-03 --force",
)
def reopen(
    period: Annotated[str, typer.Option(help="The closed month to reopen, YYYY-MM.")],
    force: Annotated[
        bool, typer.Option("--force", help="Required: reopening changes filed figures.")
    ] = False,
    workspace: WorkspaceOption = None,
    out_dir: OutOption = None,
) -> None:
    """Reopen a closed month (recorded); the next run recomputes it from the data."""
    try:
        check_period_options(ReportOptions(period=period))
        kept = run_reopen(ReportOptions(workspace=workspace, period=period, out=out_dir), force)
    except ChargebackError as exc:
        raise fail(exc) from None
    out.print(
        f"Reopened {period}; the frozen copy is kept in {display_path(kept)} and the reopening "
        "is recorded in closed/history.jsonl.",
        markup=False,
    )


@app.command(
    epilog="[bold]Examples[/]\n\n"
    "  chargeback journal --period 2026-03\n\n"
    "  chargeback journal --workspace acme --period 2026-03",
)
def journal(
    period: Annotated[str, typer.Option(help="The month to journal, YYYY-MM.")],
    workspace: WorkspaceOption = None,
    contacts: ContactsOption = None,
    out_dir: OutOption = None,
) -> None:
    """Write a balanced general-ledger journal of the month's chargebacks (journal.csv).

    Each department's cost center is debited with its charge and the service cost
    center credited with the total; the columns follow `journal:` in chargeback.yaml.
    """
    try:
        check_period_options(ReportOptions(period=period))
        path, totals = run_journal(
            ReportOptions(workspace=workspace, contacts=contacts, period=period, out=out_dir),
            progress(),
        )
    except ChargebackError as exc:
        raise fail(exc) from None
    print_warnings(totals["warnings"])
    out.print(
        f"{period}: {plural(totals['lines'], 'journal line')}, debits {totals['debit']:.2f} = "
        f"credits {totals['credit']:.2f} {totals['currency']}. Wrote {display_path(path)}",
        markup=False,
    )


@app.command(
    epilog="[bold]Examples[/]\n\n"
    "  chargeback sample demo                      # 300,000 contacts, seed 7\n\n"
    "  chargeback sample bench --contacts 1000000 --seed 1",
)
def sample(
    dest: SampleDestArgument, contacts: SampleSizeOption = 300_000, seed: SeedOption = 7
) -> None:
    """Write the sample workspace with freshly generated, deterministic data."""
    from chargeback.sample.generate import generate_sample

    try:
        counts = generate_sample(dest, contacts=contacts, seed=seed)
    except ChargebackError as exc:
        raise fail(exc) from None
    out.print(
        f"Wrote a sample workspace to {display_path(dest)}: "
        + ", ".join(plural(v, k.removesuffix("s"), k) for k, v in counts.items())
        + f". Try: chargeback report --workspace {display_path(dest)}"
    )


@app.command(
    epilog="[bold]Examples[/]\n\n"
    "  chargeback init acme && chargeback report --workspace acme\n\n"
    "  chargeback init --from-export exports/tickets.csv acme   # set up for your export",
)
def init(dest: InitDestArgument = None, from_export: FromExportOption = None) -> None:
    """Start a workspace: commented rules and settings, with a tiny contacts file or your export."""
    from chargeback.data.export_init import init_workspace

    try:
        lines = init_workspace(dest, from_export)
    except ChargebackError as exc:
        raise fail(exc) from None
    for line in lines:
        out.print(line, markup=False, highlight=False)


@app.command(
    epilog="[bold]Examples[/]\n\n"
    "  chargeback check                      # ./rules and its contacts\n\n"
    "  chargeback check --workspace acme --contacts exports/march.csv\n\n"
    "  chargeback check --format json --strict   # for CI: warnings fail too",
)
def check(
    workspace: WorkspaceOption = None,
    contacts: ContactsOption = None,
    fmt: FormatOption = TextOrJson.text,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 on warnings too, not only on errors.")
    ] = False,
    engine: EngineOption = None,
    show_sql: ShowSqlOption = False,
) -> None:
    """Check rules against the data: every finding at once, with its place; writes nothing.

    Exit code 1 when there is an error (or, with --strict, a warning).
    """
    try:
        opts = ReportOptions(workspace, contacts, **engine_options(engine, show_sql))
        report = run_check(opts, progress())
    except ChargebackError as exc:
        raise fail(exc) from None
    if fmt is TextOrJson.json:
        print_json(report.to_json())
    else:
        for part in check_view(report, out.width):
            out.print(part)
    if report.errors or (strict and report.warnings):
        raise typer.Exit(1)


@app.command(
    epilog="[bold]Examples[/]\n\n"
    "  chargeback explain CT00058836                 # the sample workspace\n\n"
    "  chargeback explain 48213 --workspace acme --format json",
)
def explain(
    contact_id: Annotated[str, typer.Argument(help="The contact's contact_id.")],
    workspace: WorkspaceOption = None,
    contacts: ContactsOption = None,
    fmt: FormatOption = TextOrJson.text,
    engine: EngineOption = None,
    show_sql: ShowSqlOption = False,
) -> None:
    """How one contact was charged: every rule, the factors, the weights, the cost."""
    try:
        opts = ReportOptions(workspace, contacts, **engine_options(engine, show_sql))
        doc = run_explain(opts, contact_id, progress())
    except ChargebackError as exc:
        raise fail(exc) from None
    if fmt is TextOrJson.json:
        print_json(doc)
    else:
        for line in explain_lines(doc):
            out.print(line, markup=False, highlight=False)


@app.command(epilog="[bold]Examples[/]\n\n  chargeback diff origin/main HEAD --format json")
def diff(
    old: Annotated[str, typer.Argument(help="Rules folder or git revision: before.")],
    new: Annotated[str, typer.Argument(help="Rules folder or git revision: after.")],
    workspace: WorkspaceOption = None,
    contacts: ContactsOption = None,
    period: PeriodOption = None,
    period_from: FromOption = None,
    period_to: ToOption = None,
    fmt: FormatOption = TextOrJson.text,
    engine: EngineOption = None,
    show_sql: ShowSqlOption = False,
) -> None:
    """How the charges move from rule set OLD to NEW on the same contacts; writes nothing."""
    opts = ReportOptions(workspace, contacts, period=period, **engine_options(engine, show_sql))
    opts.period_from, opts.period_to = period_from, period_to
    try:
        moved, warnings = run_diff(old, new, opts, progress())
    except ChargebackError as exc:
        raise fail(exc) from None
    print_warnings(warnings)
    from chargeback.review.diff import diff_json, diff_text

    print_json(diff_json(moved)) if fmt is TextOrJson.json else out.print(diff_text(moved))


if __name__ == "__main__":
    app()
