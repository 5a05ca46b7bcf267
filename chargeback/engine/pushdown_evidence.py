"""A statement's evidence where the contacts are (SPEC 10): not yet; the run reads out."""

from __future__ import annotations

from typing import Any

from chargeback.engine.sql_aggregate import Connection
from chargeback.engine.sql_compile import Primitives
from chargeback.workspace.model import Workspace


def engine_evidence(
    ws: Workspace,
    raw: Connection,
    relation: str,
    columns: dict[str, tuple[str, str]],
    prims: Primitives,
    dialect: str,
    log: list[str] | None,
) -> Any:
    """None: the run reads the contacts out for the evidence."""
    return None
