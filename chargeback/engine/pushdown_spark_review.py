"""`explain` and `check` in Spark (engine/pushdown_review.py, pushdown_check.py; SPEC 10).

What is Spark's own in reading one contact and in check's derive:

- the asked contact's rows in Parquet files (local mode) are filtered by Spark,
  which already reads those files for the sums, and collected as Arrow. The
  read-out path types them as polars reads the files, so each column must come
  back as polars' type for it; an instant only differs by its zone's name (Spark
  says UTC) and is converted, keeping the instant. Any other difference
  returns None: the contacts are read out as always. (DuckDB would be a second
  engine to install, with its own Parquet reader, for a handful of rows.)
- check's derive takes the local day as the ledger's scans do: the instant
  plus polars' own UTC offset (pushdown_tz.exact_offsets), never Java's zone
  rules, which Plan.derive's from_utc_timestamp would apply.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import polars as pl

from chargeback.data.scratch import scratch_dir
from chargeback.engine.pushdown import Plan
from chargeback.engine.pushdown_rows import _fast_time
from chargeback.engine.pushdown_spark_sql import SparkDialect, spark_literal
from chargeback.engine.pushdown_sql import UTC_NAMES, base_query, mapped
from chargeback.engine.pushdown_tz import exact_offsets
from chargeback.engine.sql_aggregate import Connection
from chargeback.workspace.model import Workspace


def id_condition(ws: Workspace, source: str, contact_id: str) -> str:
    """pushdown_review's `WHERE` in Spark's words: the derive's canonical id (`values:`
    mapped) equals the asked one, written as a Spark literal (backslashes escaped)."""
    d = SparkDialect()
    pairs = {vm.column: dict(vm.pairs) for vm in ws.settings.values if vm.pairs}
    canonical = mapped(d, d.text(d.ident(source)), pairs.get("contact_id", {}))
    return f"{canonical} = {spark_literal(contact_id)}"


def parquet_rows(
    spark: object, relation: str, files: list[Path], where: str, log: list[str] | None
) -> Path | None:
    """The rows `where` selects from the files (as pushdown_spark reads them), in a private
    Parquet file typed as polars types the files; None when a type cannot be made so."""
    query = f"SELECT * FROM {relation} WHERE {where}"
    if log is not None:
        log.append(query)
    got = pl.from_arrow(spark.sql(query).toArrow())  # type: ignore[attr-defined]
    if not isinstance(got, pl.DataFrame) or got.height == 0:
        return None  # no such contact: the read-out path's message counts them all
    typed = as_polars_reads(got, pl.Schema(pl.read_parquet_schema(files[0])))
    if typed is None:
        return None
    handle, name = tempfile.mkstemp(prefix="contact-", suffix=".parquet", dir=scratch_dir())
    os.close(handle)  # a name of its own, whatever else the folder holds
    out = Path(name)
    typed.write_parquet(out)
    return out


def as_polars_reads(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame | None:
    """`frame` (Spark's Arrow) in `schema` (polars' reading of the files): the same columns,
    each of the same type but for an instant's zone, converted (the same instants)."""
    if frame.columns != schema.names():
        return None
    casts = []
    for name, want in schema.items():
        have = frame.schema[name]
        if have == want:
            continue
        if not (isinstance(have, pl.Datetime) and isinstance(want, pl.Datetime)):
            return None
        if have.time_unit != want.time_unit or not (have.time_zone and want.time_zone):
            return None  # a wall clock, another unit: not the files' values as polars reads
        casts.append(pl.col(name).dt.convert_time_zone(want.time_zone))
    out = frame.with_columns(casts) if casts else frame
    return out if out.schema == schema else None


def spark_derive(con: Connection, p: Plan) -> str | None:
    """Plan.derive with `local` (hence date and period) as the instant plus polars' offset,
    as the ledger's scans compute it; None when those offsets are not whole seconds."""
    source = p.source
    if source.families["started_at"] != "timestamptz":
        return p.derive  # a wall clock or a date: no zone conversion at all
    tail = f" FROM ({p.base}) AS b"
    if not p.derive.endswith(tail):
        return None
    d = p.dialect
    ts = source.built["started_at"].first["v_ts"]  # the source's column, quoted
    query = f"SELECT {d.epoch(f'MIN({ts})')}, {d.epoch(f'MAX({ts})')} FROM {source.relation}"
    ((first, last),) = con.execute(query)
    if first is None or last is None:
        return p.derive  # no instant to convert
    tz = source.ws.settings.timezone
    offsets = [(int(first), 0)] if tz in UTC_NAMES else exact_offsets(tz, int(first), int(last))
    if offsets is None:
        return None
    built = [
        _fast_time(source, offsets) if n == "started_at" else c for n, c in source.built.items()
    ]
    base = base_query(d, source.relation, built)
    return p.derive.removesuffix(tail) + f" FROM ({base}) AS b"
