"""SPEC 10's engine choice, and the one call that runs the grouped sums on it.

Every engine hands attribution the same `Aggregates`; the exact arithmetic
never knows which one ran. Which engine: `--engine`, else the `engine:`
setting, else the one a database source's scheme names, else polars. A
database source runs only on its own engine (naming another is an error), and
an engine whose driver is not installed is a clear error naming the extra.
What an engine cannot run with the pinned meaning (a regex it cannot
translate, say) is refused before anything runs, at the rule's place.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from chargeback.data.limits import shown
from chargeback.data.warehouse import scrub
from chargeback.engine.aggregates import Aggregates
from chargeback.errors import ChargebackError, Problem, UsageError, WorkspaceError, problem_at
from chargeback.workspace.model import ENGINES, DbSource, Rule, Workspace

MODULES = {
    "duckdb": ("chargeback.engine.duckdb_engine", "duckdb", "duckdb"),
    "postgres": ("chargeback.engine.postgres_engine", "psycopg", "postgres"),
    "spark": ("chargeback.engine.spark_engine", "pyspark", "spark"),
}


@dataclass(frozen=True)
class EngineChoice:
    name: str  # polars | duckdb | postgres | spark
    address: str | None = None  # postgres' conninfo, Spark Connect's sc:// address
    sql_log: list[str] | None = None  # every statement sent, for --show-sql


def choose(
    ws: Workspace,
    given: str | None,
    contacts: str | DbSource | None,
    sql_log: list[str] | None = None,
) -> EngineChoice:
    """The engine for this run (SPEC 10), or a usage error saying why not."""
    if given is not None and given not in ENGINES:
        raise UsageError(f"unknown --engine '{given}' (choose from {', '.join(ENGINES)})")
    source = contacts if isinstance(contacts, DbSource) else None
    name = given or ws.settings.engine or (source.engine if source else "polars")
    if source is not None and source.engine != name:
        raise UsageError(
            f"--engine {name} cannot read the contacts at {source.uri.split('://', 1)[0]}:// "
            f"({source.place}); that address runs on the {source.engine} engine"
        )
    if name == "postgres" and source is None:
        where = ws.settings.engine_place
        raise ChargebackError(
            Problem(
                "the postgres engine runs where the contacts are: set 'contacts:' to "
                "{uri: postgresql://..., table: ...}",
                where.path if where else None,
                where.line if where else None,
            )
        )
    address = source.uri if source is not None and name in ("postgres", "spark") else None
    choice = EngineChoice(name, address, sql_log)
    module(choice)  # a missing driver stops the run before anything is read
    return choice


def module(choice: EngineChoice) -> Any:
    """The engine's module, after checking its driver is installed."""
    if choice.name == "polars":
        return importlib.import_module("chargeback.engine.polars_engine")
    path, driver, extra = MODULES[choice.name]
    try:
        importlib.import_module(driver)
        importlib.import_module("sqlglot")
    except ImportError:
        raise ChargebackError(
            f"the {choice.name} engine needs its driver: pip install 'chargeback[{extra}]'"
        ) from None
    return importlib.import_module(path)


def refuse_unsupported(choice: EngineChoice, ws: Workspace, schema: pl.Schema) -> None:
    """Each rule this engine cannot run with the pinned meaning, at the rule's place.

    Only engines whose refusals need no connection are asked here; the others
    refuse while they run, and `_placed` finds the rule the refusal names.
    """
    refuse = getattr(module(choice), "refuse_unsupported", None)
    if refuse is None or len(inspect.signature(refuse).parameters) != 2:
        return
    problems: list[Problem] = []
    for rule in ws.rules:
        try:
            refuse(replace(ws, rules=(rule,)), schema)
        except NotImplementedError as exc:
            problems.append(_refusal(choice, rule, exc))
    if problems:
        raise WorkspaceError(problems)


def _refusal(choice: EngineChoice, rule: Rule, exc: NotImplementedError) -> Problem:
    return problem_at(
        f"rule '{rule.id}': the {choice.name} engine cannot run it exactly: {exc}", rule.place
    )


def _placed(choice: EngineChoice, ws: Workspace, exc: NotImplementedError) -> WorkspaceError:
    """A refusal raised while running, at the place of the rule whose phrase or regex it quotes."""
    message = str(exc)
    for rule in ws.rules:
        blocks = [rule.match]
        if rule.control is not None:
            blocks += [b for b in (rule.control.evidence, rule.control.control) if b is not None]
        quoted = [repr(b.text_regex) for b in blocks if b.text_regex is not None]
        quoted += [repr(t) for b in blocks for t in b.text or ()]
        if any(q in message for q in quoted):
            return WorkspaceError(_refusal(choice, rule, exc))
    return WorkspaceError(f"the {choice.name} engine cannot run this workspace exactly: {message}")


def aggregate(
    choice: EngineChoice, ws: Workspace, frame: pl.DataFrame, periods: set[str] | None = None
) -> Aggregates:
    """The grouped sums attribution needs, computed on the chosen engine."""
    mod = module(choice)
    if choice.name == "polars":
        result: Aggregates = mod.aggregate(ws, frame, periods)
        return result
    refuse_unsupported(choice, ws, frame.schema)
    kwargs: dict[str, Any] = {"sql_log": choice.sql_log}
    if choice.name == "postgres":
        kwargs["conninfo"] = choice.address
    elif choice.name == "spark":
        kwargs["remote"] = choice.address
    accepted = inspect.signature(mod.aggregate).parameters
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    with engine_errors(choice, ws):
        result = mod.aggregate(ws, frame, periods, **kwargs)
    return result


@contextmanager
def engine_errors(choice: EngineChoice, ws: Workspace) -> Iterator[None]:
    """A refusal at its rule's place, a server's error as a message (never a password)."""
    failed = driver_error(choice)
    try:
        yield
    except NotImplementedError as exc:
        raise _placed(choice, ws, exc) from None
    except failed as exc:
        raise ChargebackError(
            f"the {choice.name} engine failed: {shown(scrub(str(exc)), 500)}"
        ) from None


def driver_error(choice: EngineChoice) -> type[BaseException] | tuple[()]:
    """The driver's own error class, so a server's refusal is a message, not a traceback."""
    return engine_error(choice.name)


def engine_error(name: str) -> type[BaseException] | tuple[()]:
    """driver_error by the engine's (or SQL dialect's) name."""
    names = {
        "duckdb": ("duckdb", "Error"),
        "postgres": ("psycopg", "Error"),
        "spark": ("pyspark.errors", "PySparkException"),
    }
    if name not in names:
        return ()
    module_name, attr = names[name]
    found: type[BaseException] = getattr(importlib.import_module(module_name), attr)
    return found
