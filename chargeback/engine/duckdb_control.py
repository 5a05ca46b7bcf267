"""Control baselines' daily counts (SPEC 4b) on DuckDB: now sql_aggregate.control_counts.

Kept so older imports work; the SQL is shared by every SQL engine.
"""

from __future__ import annotations

from typing import Any

from chargeback.engine.aggregates import Cell
from chargeback.engine.sql_aggregate import control_counts
from chargeback.workspace.model import Workspace


class _Con:
    def __init__(self, con: Any) -> None:
        self.con = con

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        return list(self.con.execute(sql).fetchall())


def control_inputs_sql(
    ws: Workspace, con: Any
) -> tuple[dict[frozenset[int], Cell], dict[str, frozenset[str]]]:
    """Every non-empty cell's daily series, and the rules sharing contacts with control rules."""
    return control_counts(ws, _Con(con), "duckdb")
