"""`explain` where the contacts are: aggregates from the engine, one contact read out (SPEC 10).

`explain CONTACT_ID` needs the whole run's aggregates (a baseline's B, a pool's
month, the control fits) but only one contact's own values. On duckdb (Parquet
files, a `duckdb:///` database), postgres and spark (Parquet files in local mode,
an `sc://` table or query: engine/pushdown_spark_review.py), the aggregates come from the same
in-engine sums as a ledger-only report (engine/in_engine.py, whose detector sends
any doubtful source back to the read-out path), and only the rows carrying the
asked id are read out, through exactly the data layer a read-out uses (same types,
`values:`, checks). Anything unusual (a detector flag, no such contact, a row the
data layer refuses) returns None: the caller reads every contact as always, so
its messages stay exactly those of the read-out path.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from chargeback.data.scratch import scratch_dir
from chargeback.data.sources import resolve_files
from chargeback.data.tables import CONTACTS, Loaded, load_table
from chargeback.data.warehouse import duckdb_connect, load_db_table, relation_sql
from chargeback.engine.aggregates import Aggregates, GroupTable
from chargeback.engine.engines import EngineChoice, driver_error
from chargeback.engine.in_engine import in_engine
from chargeback.engine.pushdown_sql import Dialect, literal, mapped
from chargeback.errors import ChargebackError
from chargeback.workspace.model import DbSource, Workspace

ENGINES = ("duckdb", "postgres", "spark")


@dataclass(frozen=True)
class OneContact:
    """What explain needs when the contacts stay in the engine."""

    aggregates: Aggregates  # every month's groups, the baseline counts, the control cells
    loaded: Loaded  # only the rows whose id is the one asked, typed and checked


def one_contact(
    ws: Workspace,
    choice: EngineChoice,
    spec: str | DbSource,
    root: Path,
    wanted: set[str],
    contact_id: str,
    on_bad_rows: str,
) -> OneContact | None:
    """The aggregates and the contact's own rows, or None to read the contacts as always."""
    if choice.name not in ENGINES or not _plain(contact_id):
        return None
    failed: tuple[type[BaseException], ...] = (ChargebackError, NotImplementedError)
    failed += _errors(choice)

    def rows(con: Any, _r: str, columns: dict[str, tuple[str, str]], *_: Any) -> Loaded | None:
        """The contact's rows on the connection that summed the rest: on PostgreSQL in
        the same transaction, so both come from one snapshot of the table."""
        if "contact_id" not in columns:
            return None
        where = _id_condition(ws, choice.name, columns["contact_id"][0], contact_id)
        return _rows(ws, choice, spec, root, wanted, where, on_bad_rows, con.raw)

    try:
        if isinstance(spec, DbSource) and choice.name == "postgres":
            pushed = in_engine(ws, choice, spec, root, wanted, rows)
            loaded = None if pushed is None else pushed.extra
        else:
            pushed = in_engine(ws, choice, spec, root, wanted)
            if pushed is None or pushed.columns is None or "contact_id" not in pushed.columns:
                return None
            where = _id_condition(ws, choice.name, pushed.columns["contact_id"][0], contact_id)
            loaded = _rows(ws, choice, spec, root, wanted, where, on_bad_rows)
    except pl.exceptions.PolarsError:
        return None  # Spark's rows that polars cannot retype: read out
    except failed:
        # a refusal, a server's error, a row the data layer names: the read-out path
        # meets the same thing in its own order and words
        return None
    if pushed is None or loaded is None or loaded.frame.height == 0:
        return None  # not found: the read-out path's message counts every contact
    return OneContact(pushed.aggregates, loaded)


def month_only(aggregates: Aggregates, periods: Collection[str]) -> Aggregates:
    """The aggregates of these months: what `aggregate(..., periods)` gives (a month's
    groups do not depend on other months; baseline and control counts read them all)."""
    groups = aggregates.groups
    if isinstance(groups, GroupTable):  # no Group object made for the other months
        kept = np.array([p in periods for p in groups.periods], dtype=bool)
        return replace(aggregates, groups=groups.subset(kept[groups.period]))
    return replace(aggregates, groups=tuple(g for g in groups if g.period in periods))


def _errors(choice: EngineChoice) -> tuple[type[BaseException], ...]:
    found = driver_error(choice)
    return found if isinstance(found, tuple) else (found,)


def _plain(contact_id: str) -> bool:
    """An id the data contract could hold (no control characters, not blank): any other
    is not in the contacts, which the read-out path says in its words."""
    return contact_id.strip() == contact_id != "" and not any(
        ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in contact_id
    )


def _id_condition(ws: Workspace, dialect: str, source: str, contact_id: str) -> str:
    """`WHERE` the canonical id (the source's text, `values:` mapped) is the one asked:
    the same expression the pushdown's derive gives `contact_id`."""
    if dialect == "spark":
        from chargeback.engine.pushdown_spark_review import id_condition

        return id_condition(ws, source, contact_id)
    d = Dialect(dialect)
    pairs = {vm.column: dict(vm.pairs) for vm in ws.settings.values if vm.pairs}
    canonical = mapped(d, d.text(d.ident(source)), pairs.get("contact_id", {}))
    return f"{canonical} = {literal(contact_id)}"


def _rows(
    ws: Workspace,
    choice: EngineChoice,
    spec: str | DbSource,
    root: Path,
    wanted: set[str],
    where: str,
    on_bad_rows: str,
    con: Any = None,
) -> Loaded | None:
    """The rows `where` selects, through the data layer a read-out uses (a database's
    through `con` where given: PostgreSQL's connection, in the run's transaction)."""
    settings = ws.settings
    if isinstance(spec, DbSource):
        query = f"SELECT * FROM {relation_sql(spec, choice.name)} WHERE {where}"
        source = DbSource(uri=spec.uri, query=query, place=spec.place)
        read: Callable[..., Loaded] = partial(
            load_db_table, CONTACTS, source, root, sql_log=choice.sql_log, con=con
        )
    else:
        files = resolve_files(spec, root)
        if choice.name == "spark":
            path = _spark_parquet_rows(files, where, choice.sql_log)
        else:
            path = _parquet_rows(files, where, choice.sql_log)
        if path is None:
            return None
        read = partial(load_table, CONTACTS, [path])
    return read(  # the workspace's settings, as inputs.contacts_for reads every contact
        dict(settings.columns),
        wanted,
        settings.timezone,
        settings.timestamp_format,
        on_bad_rows,
        settings.tags_separator,
        values=settings.values,
        optional_columns=settings.optional_columns,
    )


def _spark_parquet_rows(files: list[Path], where: str, sql_log: list[str] | None) -> Path | None:
    """The files' rows `where` selects, filtered by the local Spark session that summed them
    (pushdown_spark_review.parquet_rows: why Spark, and how the types stay polars')."""
    from chargeback.data.spark_session import session
    from chargeback.engine.pushdown_spark import files_relation
    from chargeback.engine.pushdown_spark_review import parquet_rows

    if not files:
        return None
    return parquet_rows(session(None), files_relation(files), files, where, sql_log)


def _parquet_rows(files: list[Path], where: str, sql_log: list[str] | None) -> Path | None:
    """The Parquet files' rows `where` selects, copied by DuckDB into a private Parquet
    file (as a `duckdb:///` source's read-out is), every column as the files type it."""

    if not files:
        return None
    listed = ", ".join(literal(str(p)) for p in files)
    query = f"SELECT * FROM read_parquet([{listed}], union_by_name = true) WHERE {where}"
    handle, name = tempfile.mkstemp(prefix="contact-", suffix=".parquet", dir=scratch_dir())
    os.close(handle)  # a name of its own, whatever else the folder holds
    out = Path(name)
    con = duckdb_connect()
    try:
        if sql_log is not None:
            sql_log.append(query)
        con.execute(f"COPY ({query}) TO {literal(str(out))} (FORMAT parquet)")
    finally:
        con.close()
    if pl.read_parquet_schema(out) != pl.read_parquet_schema(files[0]):
        return None  # DuckDB wrote a type differently: the read-out path reads the files
    return out
