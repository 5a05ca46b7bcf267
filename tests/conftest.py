"""Shared helpers: build a workspace from inline YAML and read back its ledger."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chargeback.report import ReportOptions
from chargeback.run import run_report

# Tests render many tiny document sets, where starting PDF worker processes costs
# more than it saves; the parallel path is exercised where a test asks for it
# (test_statements: test_parallel_rendering_gives_the_same_bytes).
os.environ.setdefault("CHARGEBACK_WORKERS", "1")

DEPARTMENTS = """
departments:
  - {id: billing, name: Billing, cost_center: CC-100}
  - {id: product, name: Product, cost_center: CC-200}
"""
RATES = """
costs:
  currency: USD
  method: rates
  channels:
    phone: {per_contact: 0.40, per_minute: 1.05}
    chat: {per_contact: 0.15}
  default: {per_contact: 1.00}
"""


def write_workspace(
    root: Path,
    rules: str,
    contacts: str,
    settings: str = "",
    departments: str = DEPARTMENTS,
    costs: str = RATES,
) -> Path:
    """A workspace folder: rules/main.yaml (+ departments, costs), contacts.csv, settings."""
    (root / "rules").mkdir(parents=True, exist_ok=True)
    (root / "rules" / "org.yaml").write_text(textwrap.dedent(departments))
    (root / "rules" / "costs.yaml").write_text(textwrap.dedent(costs))
    (root / "rules" / "main.yaml").write_text(textwrap.dedent(rules))
    (root / "contacts.csv").write_text(textwrap.dedent(contacts).lstrip())
    (root / "chargeback.yaml").write_text("contacts: contacts.csv\n" + textwrap.dedent(settings))
    return root


def ledger(root: Path, **options: object) -> list[dict[str, str]]:
    """Run a report on the workspace and return ledger.csv as dicts: this run's months only.

    The output folder is a book that keeps months a run does not report (SPEC 5);
    these tests re-run one workspace with other settings and want each run's own
    ledger, so each run starts a new book.
    """
    out = root / "out"
    for name in ("ledger.json", "ledger.csv"):
        (out / name).unlink(missing_ok=True)
    run_report(ReportOptions(workspace=root, out=out, formats=("csv",), **options))  # type: ignore[arg-type]
    return list(csv.DictReader(io.StringIO((out / "ledger.csv").read_text())))


def row(rows: list[dict[str, str]], period: str, decision: str) -> dict[str, str]:
    found = [r for r in rows if r["period"] == period and r["decision_id"] == decision]
    assert len(found) == 1, f"expected one row for {period}/{decision}, got {found}"
    return found[0]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return tmp_path / "ws"


def needs_spark(what: str) -> None:
    """At a Spark test module's top: skip it without pyspark or Java, or fail under CI
    (where .ci/run installs both), naming `what` needs them."""
    import importlib.util
    import shutil

    if shutil.which("java") is None or not importlib.util.find_spec("pyspark"):
        if os.environ.get("CI"):
            pytest.fail(f"{what} needs pyspark and Java (CI is set)")
        pytest.skip("pyspark or Java missing", allow_module_level=True)


@pytest.fixture(scope="session")
def spark_local() -> Iterator[Any]:
    """The one local Spark session (local[2]) of the whole pytest run, for every Spark test.

    The SparkContext starts once, and no module stops it under the next. The code under
    test finds it as the active session: spark_session.session() returns it, setting
    SESSION_CONF on it again each time. pyspark is imported here, only when a Spark test
    asks for the session (a run without Spark tests never starts a JVM); the modules
    skip themselves without pyspark or Java (needs_spark). Its lower() conformance check
    is run once, as a run pays it (cached on the session). Stopped when the run ends.
    """
    from chargeback.data import spark_session
    from chargeback.engine.spark_engine import lower_conformance

    started = time.perf_counter()
    session = spark_session.session()
    lower_conformance(session)
    print(f"\nspark local session and lower() check: {time.perf_counter() - started:.1f}s")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark(spark_local: Any) -> Any:
    """What the Spark modules' tests ask for: the run's one local session."""
    return spark_local


@pytest.fixture(scope="session")
def spark_remote() -> Iterator[str]:
    """`sc://host:port` of a Spark Connect server: CHARGEBACK_SPARK_REMOTE's if named, else
    one started on loopback for the run (tests/spark_connect_server.py) and stopped after."""
    named = os.environ.get("CHARGEBACK_SPARK_REMOTE")
    if named:
        yield named
        return
    import spark_connect_server

    started = time.perf_counter()
    server = spark_connect_server.start()
    print(f"\nspark connect server: {time.perf_counter() - started:.1f}s")
    try:
        yield server.remote
    finally:
        from pyspark.sql.connect.session import SparkSession as RemoteSession

        # the client's session released while its server lives: at exit it would retry
        # a gone server for minutes
        with contextlib.suppress(Exception):
            RemoteSession.builder.remote(server.remote).getOrCreate().stop()
        server.stop()
