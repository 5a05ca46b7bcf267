"""Many decisions: the in-engine evidence's statements do not grow with them (SPEC 10).

The examples of every decision are picked by one statement (each row unnests the
decisions it matches, one window over all of them), not one per decision: with
40 decisions and 80 rules the HTML statements are still byte for byte the
read-out path's (`--engine polars`), on DuckDB over Parquet files and on a real
PostgreSQL, and the evidence sends as many statements for 40 decisions as for 5.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest
from conftest import write_workspace
from pg_fixture import pg, pg_server  # noqa: F401  (fixtures)
from test_pushdown_evidence import SETTINGS, as_parquet, same_statements

pytest.importorskip("duckdb")

REASONS = [f"topic{j}.case{j % 3}" for j in range(12)]
CHANNELS = ["phone", "chat", "email"]
WORDS = ["refund", "crash", "late", "login", "fee"]


def many_rules(decisions: int) -> str:
    """`decisions` decisions with two rules each: a reason rule and a text or channel rule,
    windows that start and end in different months, some overlapping contacts."""
    lines = ["decisions:"]
    for k in range(decisions):
        start = f"2026-{2 + k % 3:02d}-{1 + (k * 7) % 27:02d}"
        ends = f", ends: 2026-04-{10 + k % 15:02d}" if k % 4 == 1 else ""
        dept = "billing" if k % 2 else "product"
        lines.append(
            f"  - {{id: d{k}, title: Decision {k}, kind: process, department: {dept}, "
            f"effective: {start}{ends}}}"
        )
    lines.append("rules:")
    for k in range(decisions):
        second = (
            f'{{text: ["{WORDS[k % len(WORDS)]}"]}}'
            if k % 2
            else f"{{channel: [{CHANNELS[k % 3]}], reason: [topic{(k + 5) % 12}.*]}}"
        )
        lines += [
            f"  - {{id: d{k}-reason, decision: d{k}, match: {{reason: [{REASONS[k % 12]}]}}}}",
            f"  - {{id: d{k}-more, decision: d{k}, match: {second}}}",
        ]
    return "\n".join(lines) + "\n"


def contacts_csv() -> str:
    """Three hundred contacts over Feb-Apr 2026, with ties in local time."""
    rng = random.Random(40)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["contact_id", "started_at", "channel", "reason", "text", "handle_seconds"])
    for k in range(300):
        month, dom = rng.randrange(2, 5), rng.randrange(1, 29)
        hour, minute = rng.randrange(24), rng.randrange(0, 60, 15)
        if k % 10 != 9:  # every tenth contact ties the one before it, ids in byte order
            stamp = f"2026-{month:02d}-{dom:02d}T{hour:02d}:{minute:02d}:00Z"
        text = " ".join(rng.sample(WORDS, 2))
        cid = f"{'cC'[k % 2]}-{k}"
        writer.writerow([cid, stamp, rng.choice(CHANNELS), rng.choice(REASONS), text,
                         rng.randrange(0, 900)])  # fmt: skip
    return out.getvalue()


CONTACTS = contacts_csv()


def few_rows(sent: list[tuple[str, int]], decisions: int) -> None:
    """No statement brings every contact back; at most four examples per decision and month."""
    picks = [n for sql, n in sent if "ROW_NUMBER()" in sql]
    assert len(picks) == 1 and 0 < picks[0] <= 4 * 3 * decisions
    assert all(n < 300 for sql, n in sent if "ROW_NUMBER()" not in sql)


def workspace(root: Path, decisions: int) -> Path:
    ws = write_workspace(root, many_rules(decisions), CONTACTS)
    as_parquet(ws)
    return ws


def test_many_decisions_give_the_read_out_statements_with_as_many_statements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: dict[int, list[tuple[str, int]]] = {}
    for decisions in (5, 40):
        ws = workspace(tmp_path / f"ws{decisions}", decisions)
        sent[decisions] = same_statements(
            ws, tmp_path / str(decisions), "polars-files", monkeypatch
        )
        few_rows(sent[decisions], decisions)
    assert len(sent[40]) == len(sent[5]), ([s for s, _ in sent[40]], [s for s, _ in sent[5]])
    assert any("unnest(" in sql for sql, _ in sent[40])


def test_many_decisions_on_postgres_give_the_read_out_statements(
    tmp_path: Path,
    pg: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from test_postgres_source import load_table

    ws = workspace(tmp_path / "ws", 40)
    load_table(pg, ws, "support.many")
    (ws / "chargeback.yaml").write_text(
        f'contacts: {{uri: "{pg}", table: support.many}}\n{SETTINGS}'
    )
    few_rows(same_statements(ws, tmp_path, "postgres", monkeypatch), 40)
