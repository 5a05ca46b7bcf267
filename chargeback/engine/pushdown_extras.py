"""What a report needs beyond the ledger, computed where the contacts are (SPEC 10).

A statement's evidence and the CS-value report read every contact on the
read-out path. On duckdb, postgres and spark, once the in-engine ledger's
detector has passed every row, each of them is asked of the engine on the same
connection (in_engine's `then`), and only grouped rows and a few sampled
contacts come back. A part the engine cannot answer comes back as None and the
run reads the contacts out for that part alone (run.py), so the documents are
the same either way. attributions.parquet is not asked here: it needs the run's
attribution, so it is a second pass (engine/pushdown_attributions.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chargeback.engine.engines import engine_error
from chargeback.engine.sql_aggregate import Connection
from chargeback.engine.sql_compile import Primitives
from chargeback.workspace.model import Workspace


@dataclass
class Extras:
    """Each part as the engine gave it; None: read the contacts out for it."""

    evidence: Any = None  # pushdown_evidence.EngineEvidence
    value: Any = None  # pushdown_value.EngineValue

    def missing(self, needs: frozenset[str]) -> bool:
        return any(getattr(self, name) is None for name in needs)


def engine_extras(
    ws: Workspace,
    needs: frozenset[str],
    orders: bool,
    raw: Connection,
    relation: str,
    columns: dict[str, tuple[str, str]],
    prims: Primitives,
    dialect: str,
    log: list[str] | None,
) -> Extras:
    """The parts `needs` names, each from the engine or None; never None itself, so the
    in-engine ledger stands whatever a part does. `orders`: the run has orders.

    Once a part is None the contacts are read out, and every later part is computed
    from them instead: asking the engine for it too would be work thrown away. A
    driver's error in one part (out of memory, a statement it refuses) is that part's
    None, not the whole run's read-out.
    """
    out = Extras()
    failed = engine_error(dialect)
    if "evidence" in needs:
        from chargeback.engine.pushdown_evidence import engine_evidence

        try:
            out.evidence = engine_evidence(ws, raw, relation, columns, prims, dialect, log)
        except failed:
            out.evidence = None
        if out.evidence is None:
            return out
    if "value" in needs:
        from chargeback.engine.pushdown_value import engine_value

        try:
            out.value = engine_value(ws, orders, raw, relation, columns, prims, dialect, log)
        except failed:
            out.value = None
    return out
