"""What a report run is asked for and what it found: the types every later step shares.

They live here, below the documents and the operations, so that rendering,
closing and sending can take a run's result without importing the module that
orchestrates the run (run.py sits on top and imports them all).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from chargeback.data.tables import Loaded
from chargeback.engine.attribute import Attribution
from chargeback.engine.ledger import Ledger, LedgerLine, PeriodSummary
from chargeback.workspace.model import Workspace

if TYPE_CHECKING:  # the CS-value report's modules load when it is computed
    from chargeback.engine.value import ValueReport

FORMATS = ("pdf", "html", "csv", "json")  # what a report writes by default
KNOWN_FORMATS = (*FORMATS, "attributions")  # attributions.parquet only when asked for
PDF_VARIANTS = ("pdf/a-3b",)  # WeasyPrint's names; render.py passes them through


@dataclass
class ReportOptions:
    workspace: Path | None = None
    contacts: str | None = None
    orders: str | None = None  # SPEC 7's optional order data; overrides the setting
    period: str | None = None
    period_from: str | None = None
    period_to: str | None = None
    out: Path | None = None
    formats: tuple[str, ...] = FORMATS
    on_bad_rows: str = "stop"
    templates: Path | None = None  # a company's own templates, over the built-in ones
    pdf_variant: str | None = None  # "pdf/a-3b" for archiving
    value_only: bool = False  # `chargeback value`: the CS-value report without the ledger files
    write: bool = True  # False: compute only (journal), write no report files
    engine: str | None = None  # SPEC 10's --engine: over the `engine:` setting
    sql_log: list[str] | None = None  # every SQL statement sent to an engine (--show-sql)


@dataclass(frozen=True)
class Frozen:
    """A closed month as finance filed it (operations/closing.py reads and writes these)."""

    period: str
    closed_at: str
    folder: Path
    lines: tuple[LedgerLine, ...]
    summary: PeriodSummary
    files: dict[str, str]  # document path under the period folder -> sha256
    cs_value: dict[str, Any] | None
    fingerprint: str = ""  # the inputs that produced the month, as its close recorded them


@dataclass
class Served:
    """The reported months that come from closed/ instead of from the data."""

    frozen: dict[str, Frozen] = field(default_factory=dict)  # reported periods from closed/
    closed: dict[str, Frozen] = field(default_factory=dict)  # every month in <out>/closed/
    documents: dict[str, bytes] = field(default_factory=dict)  # "P/departments/x.pdf" -> bytes
    warnings: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    workspace: Workspace
    loaded: Loaded
    attribution: Attribution
    ledger: Ledger
    periods: list[str]
    out_dir: Path
    written: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] | None = None  # run metadata, shared by ledger.json and documents
    orders: Loaded | None = None
    value: ValueReport | None = None  # the CS-value report, when it was asked for
    served: Served = field(default_factory=Served)  # closed months served from <out>/closed/
    # the contacts, read out for evidence, CS value and attributions; None where the
    # engine answered those (engine/pushdown_extras.Extras, in `extras`)
    contacts: pl.DataFrame | None = None
    extras: Any = None
    # attributions.parquet's rows as the engine computed them (engine/pushdown_attributions);
    # None: computed from `contacts`
    attributions: pl.DataFrame | None = None


class Steps:
    """Times each step and tells an optional observer when one starts and ends."""

    def __init__(self, observer: Callable[[str, float | None], None] | None = None) -> None:
        self.observer = observer
        self.timings: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        if self.observer:
            self.observer(name, None)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = time.perf_counter() - start
            if self.observer:
                self.observer(name, self.timings[name])
