"""Time the engines against the floor on large generated workspaces (issue 15).

Each command runs as a whole, fresh process (as cron runs it) and is timed for
wall clock and peak memory (the child's own rusage): the floor (polars reading
the columns a report needs, and nothing else), `chargeback report --format csv`
on each engine, and a hand-written straightforward DuckDB SQL (read_parquet, a
CASE per rule, GROUP BY). Ratios to the floor, measured in the same run, travel
between machines better than seconds. The engines' ledger.csv must agree, and
the hand SQL's groups, priced with chargeback's own arithmetic, must give the
same ledger, so a fast wrong answer cannot pass.

    python bench/bench_engines.py                          # 300k contacts, 30 rules: < 1 min
    python bench/bench_engines.py --sizes 3M --rules 30,300
    python bench/bench_engines.py --sizes 3M,10M --rules 30,300 --repeat 3
    python bench/bench_engines.py --sizes 100M --rules 30 --engines duckdb --files 10 --repeat 1

Data goes under /tmp/bench-engines (kept between runs; same size and seed are
reused).
"""

from __future__ import annotations

import argparse
import compileall
import csv
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

ROOT = Path("/tmp/bench-engines")
TZ = "America/New_York"
FIRST, MONTHS = date(2025, 1, 1), 24


def words(text: str) -> list[str]:
    """A comma-separated vocabulary as a list."""
    return [w.strip() for w in text.split(",")]


COLUMNS = words(
    "contact_id, timestamp, channel, handle_seconds, reason, text, tags, product, region, outcome"
)  # what a report reads
CHANNELS = {"phone": 0.38, "chat": 0.27, "email": 0.17, "social": 0.06, "sms": 0.05}
CHANNELS["messaging"] = 1 - sum(CHANNELS.values())
FAMILIES = words(
    "billing, account, app, device, network, order, plan, streaming, fiber, roaming, porting, "
    "payment, promo, store, delivery"
)
SUBS = ["dispute", "question", "error", "change", "cancel", "setup", "outage", "refund"]
NOUNS = words(
    "late fee, bill, invoice, password, login, app, router, signal, outage, delivery, "
    "courier, refund, promo code, sim card, esim, roaming, port number, streaming, buffering, "
    "contract, upgrade, discount, payment, autopay, statement, activation, coverage, speed, "
    "installation, technician, voicemail, data plan, hotspot, tv box, parcel, order, return "
    "label, trade-in, warranty, screen, battery, two-factor code, paper bill, price rise, "
    "loyalty points, 5g, wifi, cancellation, credit check, direct debit"
)
OPENERS = [
    *words(
        "Question about, Problem with, Help:, Re:, Complaint -, Why is my, Urgent:, Fwd:, "
        "Still waiting on, Cannot use, Issue with"
    ),
    "",
]
TAGS = words(
    "vip, fee, late, churn-risk, repeat, outage, app, ios, android, fiber, mobile, tv, promo, "
    "blackfriday, courier, billing, esim, escalated, callback, survey, social, press, legal, "
    "refund"
)
PRODUCTS = ["mobile", "fiber", "streaming", "bundle", "prepaid"]
REGIONS = ["northeast", "southeast", "midwest", "southwest", "west"]
OUTCOMES = ["resolved", "unresolved", "escalated", "saved", "sale", "transferred"]


def size(text: str) -> int:
    """'300k', '3M', '10M' or a plain number of contacts."""
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def month_start(i: int) -> date:
    return date(FIRST.year + (FIRST.month - 1 + i) // 12, (FIRST.month - 1 + i) % 12 + 1, 1)


# ----------------------------------------------------------------------------- data


def subjects(rng: random.Random, n: int = 20_000) -> list[str]:
    """Subject lines mixing the phrases rules look for, in mixed case."""
    out = []
    for _ in range(n):
        a, b = rng.sample(NOUNS, 2)
        line = f"{rng.choice(OPENERS)} {a} {rng.choice(['and', 'after', '-', 'not', 'for'])} {b}"
        line = line.title() if rng.random() < 0.3 else line.capitalize()
        out.append(f"{line.strip()} #{rng.randrange(10_000)}")
    return out


def unless(condition: pl.Expr, column: str) -> pl.Expr:
    """The column, null where `condition` holds."""
    return pl.when(condition).then(None).otherwise(pl.col(column)).alias(column)


def write_contacts(folder: Path, n: int, seed: int, files: int | None = None) -> None:
    """One Parquet file per month, timestamps as UTC instants, tags as lists; with `files`,
    that many files instead, each a run of whole months (the same rows)."""
    rng, np_rng = random.Random(seed), np.random.default_rng(seed)
    pool = pl.Series(subjects(rng))
    combos = pl.Series(
        [rng.sample(TAGS, rng.choice([1, 1, 2, 3])) for _ in range(2000)], dtype=pl.List(pl.String)
    )
    reasons = pl.Series([f"{f}.{s}" for f in FAMILIES for s in SUBS])
    folder.mkdir(parents=True, exist_ok=True)
    per_month = np.full(MONTHS, n // MONTHS)
    per_month[: n % MONTHS] += 1
    groups = [list(g) for g in np.array_split(range(MONTHS), files or MONTHS)]
    held: list[pl.DataFrame] = []
    offset = 0
    for m in range(MONTHS):
        k = int(per_month[m])
        start = datetime.combine(month_start(m), datetime.min.time())
        span = int(
            (datetime.combine(month_start(m + 1), datetime.min.time()) - start).total_seconds()
        )
        epoch = int((start - datetime(1970, 1, 1)).total_seconds() + 5 * 3600)  # ~New York
        stamps = np.sort(np_rng.integers(0, span * 1_000_000, k)) + epoch * 1_000_000
        channel = np_rng.choice(list(CHANNELS), k, p=list(CHANNELS.values()))
        frame = pl.DataFrame(
            {
                "contact_id": pl.int_range(offset, offset + k, eager=True),
                "timestamp": pl.Series(stamps).cast(pl.Datetime("us", "UTC")),
                "channel": channel,
                "handle_seconds": np.round(np_rng.lognormal(5.6, 0.8, k), 1),
                "reason": reasons.gather(np_rng.zipf(1.3, k) % len(reasons)),
                "text": pool.gather(np_rng.integers(0, len(pool), k)),
                "tags": combos.gather(np_rng.integers(0, len(combos), k)),
                "product": np_rng.choice(PRODUCTS, k),
                "region": np_rng.choice(REGIONS, k),
                "outcome": np_rng.choice(OUTCOMES, k, p=[0.6, 0.12, 0.1, 0.08, 0.05, 0.05]),
            }
        ).with_columns(
            pl.format("C{}", pl.col("contact_id").cast(pl.String).str.zfill(10)),
            # email is priced per message; uncoded inboxes; no tags on most contacts
            unless(pl.col("channel") == "email", "handle_seconds"),
            unless(
                pl.col("channel").is_in(["email", "social"]) & (pl.col("handle_seconds") > 300),
                "reason",
            ),
            unless(pl.lit(pl.Series(np_rng.random(k) < 0.6)), "tags"),
        )
        offset += k
        group = next(g for g in groups if m in g)
        held.append(frame)
        if m != group[-1]:
            continue
        name = f"{month_start(group[0]):%Y-%m}"
        name += f"-to-{month_start(m):%Y-%m}" if len(group) > 1 else ""
        pl.concat(held).write_parquet(folder / f"contacts-{name}.parquet")
        held.clear()


# ----------------------------------------------------------------------------- rules


def workspace_yaml(n_rules: int, seed: int) -> dict[str, Any]:
    """Departments, decisions, costs and `n_rules` rules of every kind the SPEC has.

    Rules draw from shared vocabularies, as real rule sets do: the same reason
    list or phrase turns up in several rules (by channel, by window).
    """
    rng = random.Random(seed * 7919 + n_rules)
    departments = [
        {"id": f"dept{i}", "name": f"Department {i}", "cost_center": f"CC-{4100 + i}"}
        for i in range(8)
    ]
    decisions = []
    for i in range(max(3, n_rules // 5)):
        eff = month_start(rng.randrange(2, MONTHS - 2)) + timedelta(days=rng.randrange(28))
        d: dict[str, Any] = {
            "id": f"decision-{i}",
            "title": f"Decision {i}",
            "kind": "other",
            "department": f"dept{i % 8}",
            "effective": eff,
        }
        if rng.random() < 0.3:
            d["ends"] = eff + timedelta(days=rng.randrange(60, 300))
        if rng.random() < 0.5:
            d["revenue"] = {"monthly": float(rng.randrange(1000, 90000))}
        decisions.append(d)
    phrases = rng.sample(NOUNS, 30) + [
        f"{o.lower()} {x}" for o, x in zip(OPENERS, NOUNS, strict=False) if o
    ]
    rules = []
    for i in range(n_rules):
        family = rng.choice(FAMILIES[:8] if rng.random() < 0.7 else FAMILIES)
        match: dict[str, Any] = {}
        kind = rng.random()
        if kind < 0.75:
            subs = rng.sample(SUBS, rng.choice([1, 1, 2, 3]))
            match["reason"] = [f"{family}.{s}" for s in subs]
            if rng.random() < 0.2:
                match["reason"] = [f"{family}.{rng.choice(SUBS)[:2]}*"]
        if kind >= 0.6 or rng.random() < 0.15:
            match["text"] = rng.sample(phrases, rng.choice([1, 2, 2, 3, 4]))
        elif rng.random() < 0.1:
            a, b = rng.sample(NOUNS, 2)
            match["text_regex"] = rf"\b{a.split()[0]}\b.{{0,30}}({b.split()[0]}|{rng.choice(SUBS)})"
        if rng.random() < 0.35:
            match["channel"] = rng.sample(list(CHANNELS)[:4], rng.choice([1, 2, 3]))
        if rng.random() < 0.15:
            match["tags"] = rng.sample(TAGS, rng.choice([1, 2]))
        for key, values in (("product", PRODUCTS), ("region", REGIONS), ("outcome", OUTCOMES)):
            if rng.random() < 0.07:
                match[key] = rng.sample(values, 2)
        rule: dict[str, Any] = {"id": f"rule-{i}", "decision": rng.choice(decisions)["id"]}
        rule["match"] = match
        if rng.random() < 0.7:
            rule["window"] = {"days": rng.randrange(30, 240)}
            if rng.random() < 0.2:
                rule["window"]["start_offset_days"] = rng.randrange(0, 30)
        if rng.random() < 0.25:
            rule["share"] = rng.choice([0.5, 0.8])
        if rng.random() < 0.25:
            rule["baseline"] = {"lookback_days": rng.choice([28, 56, 90])}
        rules.append(rule)
    rates = {"phone": (0.5, 1.1), "chat": (0.2, 0.55), "email": (3.6, 0), "social": (4.2, 0.3)}
    rates |= {"sms": (0.9, 0.25)}  # messaging: the default
    channels = {ch: {"per_contact": c, "per_minute": m} for ch, (c, m) in rates.items()}
    costs = {"currency": "USD", "method": "rates", "channels": channels}
    costs["default"] = {"per_contact": 5.00, "per_minute": 0.0}
    return {"departments": departments, "decisions": decisions, "costs": costs, "rules": rules}


def make_workspace(
    n: int, n_rules: int, seed: int, files: int | None = None
) -> tuple[Path, Path, dict[str, Any]]:
    """(workspace, contacts folder, rules): data shared between rule counts, reused if there.
    `files`: the contacts in that many Parquet files (default: one per month)."""
    tail = f"-f{files}" if files else ""
    data = ROOT / f"data-{n}-s{seed}{tail}"
    if not (data / "done").exists():
        start = time.perf_counter()
        # in a child: a child's peak memory (ru_maxrss) starts at its parent's peak, so
        # writing 3M contacts here would inflate every command's peak after it
        here = str(Path(__file__).resolve().parent)
        code = "import sys; sys.path.insert(0, sys.argv[1]); from bench_engines import *; "
        code += "write_contacts(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), "
        code += "int(sys.argv[5]) or None)"
        argv = [here, str(data), str(n), str(seed), str(files or 0)]
        subprocess.run([sys.executable, "-c", code, *argv], check=True)
        (data / "done").write_text("ok\n")
        print(f"generated {n:,} contacts in {time.perf_counter() - start:.1f} s at {data}")
    ws = ROOT / f"ws-{n}-r{n_rules}-s{seed}{tail}"
    (ws / "rules").mkdir(parents=True, exist_ok=True)
    spec = workspace_yaml(n_rules, seed)
    (ws / "rules" / "workspace.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    settings = {
        "contacts": str(data),
        "timezone": TZ,
        "overlap": "split",
        "columns": {"started_at": "timestamp"},
    }
    (ws / "chargeback.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    return ws, data, spec


# ----------------------------------------------------------------------------- hand SQL


def _list(values: list[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _any_of(column: str, values: list[str]) -> str:
    exact = [v for v in values if not v.endswith("*")]
    parts = [f"{column} IN ({_list(exact)})"] if exact else []
    parts += [f"starts_with({column}, {_list([v[:-1]])})" for v in values if v.endswith("*")]
    return "(" + " OR ".join(parts) + ")"


def _match_sql(match: dict[str, Any]) -> str:
    parts = [
        _any_of(k, match[k])
        for k in ("reason", "channel", "product", "region", "outcome")
        if k in match
    ]
    if "tags" in match:
        parts.append(f"list_has_any(tags, [{_list(match['tags'])}])")
    if "text" in match:
        parts.append(
            "(" + " OR ".join(f"contains(tl, {_list([p.lower()])})" for p in match["text"]) + ")"
        )
    if "text_regex" in match:
        parts.append(f"regexp_matches(text, {_list([match['text_regex']])}, 'i')")
    return "coalesce(" + " AND ".join(parts or ["true"]) + ", false)"


def hand_sql(spec: dict[str, Any], data: Path) -> str:
    """The straightforward implementation: a CASE per rule into bit masks, one GROUP BY."""
    decisions = {d["id"]: d for d in spec["decisions"]}
    masks: list[list[str]] = []
    baselines = []
    for i, r in enumerate(spec["rules"]):
        d = decisions[r["decision"]]
        w = r.get("window", {})
        first = d["effective"] + timedelta(days=w.get("start_offset_days", 0))
        window = [f"d >= DATE '{first}'"]
        last = [first + timedelta(days=w["days"] - 1)] if "days" in w else []
        last += [d["ends"]] if "ends" in d else []
        window += [f"d <= DATE '{min(last)}'"] if last else []
        match = _match_sql(r["match"])
        if i % 62 == 0:
            masks.append([])
        masks[-1].append(
            f"CASE WHEN {match} AND {' AND '.join(window)} THEN {1 << (i % 62)} ELSE 0 END"
        )
        if "baseline" in r:
            start = d["effective"] - timedelta(days=r["baseline"]["lookback_days"])
            baselines.append(
                f"sum(CASE WHEN {match} AND d >= DATE '{start}' AND "
                f"d < DATE '{d['effective']}' THEN 1 ELSE 0 END)"
            )
    mask_cols = ", ".join(f"({' + '.join(m)})::BIGINT AS m{k}" for k, m in enumerate(masks))
    keys = ", ".join(f"m{k}" for k in range(len(masks)))
    src = f"""SELECT *, lower(text) AS tl, local::DATE AS d, strftime(local, '%Y-%m') AS period,
        coalesce(round(handle_seconds * 1000000)::BIGINT, 0) AS hs_us
        FROM (SELECT *, timezone('{TZ}', timestamp) AS local
              FROM read_parquet('{data}/*.parquet'))"""
    groups = f"""SELECT period, channel, {keys}, count(*) AS n, sum(hs_us) AS hs FROM
        (SELECT period, channel, hs_us, {mask_cols} FROM src) GROUP BY ALL"""
    base = f"SELECT {', '.join(baselines) or '0'} FROM src"
    return f"WITH src AS ({src}) {groups};\nWITH src AS ({src}) {base}"


HAND_RUNNER = """
import csv, sys, duckdb
groups_sql, base_sql = open(sys.argv[1]).read().split(';\\n')
con = duckdb.connect()
rows = con.execute(groups_sql).fetchall()
base = con.execute(base_sql).fetchone()
with open(sys.argv[2], 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['baseline', *base])
    w.writerows(rows)
"""


@dataclass
class Timing:
    what: str
    seconds: float  # the median of the rounds
    peak_mb: float
    rounds: tuple[float, ...] = ()  # each round's seconds, in round order


def paired(a: Timing, b: Timing) -> tuple[float, float]:
    """a over b round by round (both ran in each round, minutes apart at most): the
    least and greatest ratio. A ratio of medians hides how far a slow or fast minute
    moves it; the spread shows it."""
    ratios = [x / y for x, y in zip(a.rounds, b.rounds, strict=True)] or [a.seconds / b.seconds]
    return min(ratios), max(ratios)


def run_once(command: list[str], cwd: Path | None = None) -> tuple[float, float] | None:
    """Wall seconds and peak RSS (MB) of one whole process, from its own rusage.

    None when it fails (said on stderr): the other commands still run.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode:
        print(f"  FAILED ({proc.returncode}): {err.decode()[-1500:]}", file=sys.stderr)
        return None
    return seconds, usage.ru_maxrss / 1024


def timed_rounds(
    runs: list[tuple[str, list[str], Path | None]], repeat: int
) -> list[Timing | None]:
    """Each command once per round, rounds one after another: a machine whose speed
    drifts over minutes (this one's varies by a fifth) then slows every command alike,
    and the ratios to the floor hold. The median per command; None when one failed."""
    seconds: list[list[float] | None] = [[] for _ in runs]
    peaks: list[float] = [0.0 for _ in runs]
    for round_ in range(repeat):
        print(f"  round {round_ + 1} of {repeat}: {len(runs)} commands", file=sys.stderr)
        for i, (_, command, cwd) in enumerate(runs):
            done = seconds[i]
            if done is None:
                continue
            run = run_once(command, cwd)
            if run is None:
                seconds[i] = None
                continue
            done.append(run[0])
            peaks[i] = max(peaks[i], run[1])
    return [
        Timing(what, statistics.median(done), peak, tuple(done)) if done else None
        for (what, _, _), done, peak in zip(runs, seconds, peaks, strict=True)
    ]


def report_command(ws: Path, out: Path, engine: str) -> list[str]:
    args = ["report", "--workspace", str(ws), "--format", "csv", "--out", str(out)]
    return [sys.executable, "-m", "chargeback", *args, "--engine", engine]


def ledger_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def hand_ledger(ws_path: Path, groups_csv: Path) -> list[dict[str, str]]:
    """The hand SQL's groups through chargeback's own exact arithmetic."""
    from chargeback.documents.ledger_files import line_values
    from chargeback.engine.aggregates import Aggregates, Group
    from chargeback.engine.attribute import attribute
    from chargeback.engine.ledger import build_ledger
    from chargeback.engine.polars_engine import decode_masks
    from chargeback.workspace.load import load_workspace

    ws = load_workspace(ws_path)
    with groups_csv.open(newline="") as f:
        rows = list(csv.reader(f))
    base = [r for r in ws.rules if r.baseline_lookback_days is not None]
    counts = {r.id: int(float(c)) for r, c in zip(base, rows[0][1:], strict=False)}
    groups = sorted(
        (
            Group(p, ch, decode_masks([int(m) for m in ms]), int(n), int(float(hs or 0)))
            for p, ch, *ms, n, hs in rows[1:]
        ),
        key=lambda g: (g.period, g.channel, sorted(g.matched)),
    )
    attribution = attribute(ws, Aggregates(groups=tuple(groups), baseline_counts=counts))
    periods = sorted({g.period for g in groups})
    ledger = build_ledger(ws, attribution, periods)
    return [line_values(line) for line in ledger.lines]


def agree(name: str, a: list[dict[str, str]], b: list[dict[str, str]]) -> bool:
    keys = ("period", "decision_id", "contacts", "cost")
    left = sorted(tuple(r[k] for k in keys) for r in a)
    right = sorted(tuple(r[k] for k in keys) for r in b)
    if left == right:
        print(f"  ledgers agree: {name} ({len(left)} lines)")
        return True
    diff = sorted(set(left) ^ set(right))[:6]
    print(f"  LEDGERS DIFFER: {name}: {len(set(left) ^ set(right))} lines, e.g. {diff}")
    return False


def bench(n: int, rule_counts: list[int], args: argparse.Namespace) -> bool:
    """One size: every rule count's commands timed in the same rounds (with one floor),
    so the growth from the fewest rules to the most is measured under the same load."""
    made = {r: make_workspace(n, r, args.seed, args.files) for r in rule_counts}
    data = made[rule_counts[0]][1]
    cols = ", ".join(repr(c) for c in COLUMNS)
    read = f"pl.scan_parquet(sys.argv[1] + '/*.parquet').select({cols}).collect()"
    floor = [sys.executable, "-c", f"import polars as pl, sys\n{read}", str(data)]
    runs: list[tuple[str, list[str], Path | None]] = [
        ("floor: polars reads the columns", floor, None)
    ]
    for r, (ws, _, spec) in made.items():
        for e in args.engines:
            runs.append((f"{r}: report --engine {e}", report_command(ws, ws / f"out-{e}", e), None))
        if args.baseline_tree:  # another checkout's chargeback, e.g. before a change
            before = report_command(ws, ws / "out-baseline", "polars")
            what = f"{r}: report --engine polars (baseline tree)"
            runs.append((what, before, args.baseline_tree))
        sql_file = ws / "hand.sql"
        sql_file.write_text(hand_sql(spec, data))
        hand = [sys.executable, "-c", HAND_RUNNER, str(sql_file), str(ws / "hand-groups.csv")]
        runs.append((f"{r}: hand-written DuckDB SQL", hand, None))
    timings = dict(zip([w for w, _, _ in runs], timed_rounds(runs, args.repeat), strict=True))
    floor_t = timings[runs[0][0]]
    if floor_t is None:
        print("  the floor failed")
        return False
    ok = all(t is not None for t in timings.values())
    for r, (ws, _, _) in made.items():
        print(f"\n{n:,} contacts, {r} rules ({ws})")
        print(f"  {'what':<40}{'wall s':>10}{'peak MB':>10}{'x floor':>9}  rounds' range")
        mine: list[tuple[str, Timing | None]] = [(floor_t.what, floor_t)]
        mine += [(w, t) for w, t in timings.items() if w.startswith(f"{r}: ")]
        for what, timing in mine:
            label = what.split(": ", 1)[1] if what.startswith(f"{r}: ") else what
            if timing is None:
                print(f"  {label:<40}{'failed':>10}")
                continue
            ratio = timing.seconds / floor_t.seconds
            low_r, high_r = paired(timing, floor_t)
            spread = f"  {low_r:.1f}-{high_r:.1f}" if timing is not floor_t else ""
            print(
                f"  {label:<40}{timing.seconds:>10.2f}{timing.peak_mb:>10.0f}{ratio:>9.1f}{spread}"
            )
        ok &= check_ledgers(ws, r, args, timings)
    if len(made) > 1:  # the target: the most rules at most 1.5x the fewest
        low, high = min(made), max(made)
        print(f"\n{n:,} contacts, {high} rules / {low} rules (same rounds)")
        for e in args.engines:
            a, b = timings[f"{low}: report --engine {e}"], timings[f"{high}: report --engine {e}"]
            if a and b:
                low_r, high_r = paired(b, a)
                print(
                    f"  report --engine {e:<24}{b.seconds / a.seconds:>10.2f}"
                    f"  rounds' range {low_r:.2f}-{high_r:.2f}"
                )
    return ok


def check_ledgers(
    ws: Path, r: int, args: argparse.Namespace, timings: dict[str, Timing | None]
) -> bool:
    """The engines' ledgers agree with each other, the baseline tree's and the hand SQL's."""
    engines = [e for e in args.engines if timings.get(f"{r}: report --engine {e}")]
    if not engines:
        return False
    ok = True
    ledgers = {e: ledger_rows(ws / f"out-{e}" / "ledger.csv") for e in engines}
    first = engines[0]
    for e in engines[1:]:
        ok &= agree(f"{first} = {e}", ledgers[first], ledgers[e])
    if timings.get(f"{r}: report --engine polars (baseline tree)"):
        before_rows = ledger_rows(ws / "out-baseline" / "ledger.csv")
        ok &= agree(f"{first} = baseline tree", ledgers[first], before_rows)
    if timings.get(f"{r}: hand-written DuckDB SQL"):
        ok &= agree(f"{first} = hand SQL", ledgers[first], hand_ledger(ws, ws / "hand-groups.csv"))
    return ok


def byte_compile(trees: list[Path | None]) -> None:
    """Each timed tree's bytecode written first, as `pip install` writes an installed
    package's: an editable checkout under PYTHONDONTWRITEBYTECODE=1 (set on some
    machines, this one included) would compile every module on every run (0.13 s)."""
    for tree in trees:
        if tree is None:
            continue
        compileall.compile_dir(tree / "chargeback", quiet=1)
        if (tree / "cli.py").is_file():
            compileall.compile_file(tree / "cli.py", quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="300k", help="contacts, comma-separated: 300k,3M,10M")
    parser.add_argument("--rules", default="30", help="rule counts, comma-separated: 30,300")
    parser.add_argument("--engines", default="polars,duckdb")
    parser.add_argument("--repeat", type=int, default=None, help="runs per command (median)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--files",
        type=int,
        default=None,
        help="the contacts in this many Parquet files, each a run of whole months "
        "(default: one file per month, 24)",
    )
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        help="also time `report` run from this folder (a copy of chargeback/ and cli.py "
        "before a change): `python -m chargeback` imports the package found there",
    )
    args = parser.parse_args()
    if args.files is not None and not 1 <= args.files <= MONTHS:
        parser.error(f"--files: from 1 to {MONTHS}, a file holding whole months")
    args.engines = args.engines.split(",")
    sizes = [size(s) for s in args.sizes.split(",")]
    if args.repeat is None:
        args.repeat = 1 if max(sizes) <= 500_000 else 3
    print(f"{os.cpu_count()} cpus; polars {pl.__version__}; load {os.getloadavg()[0]:.1f}")
    byte_compile([Path(__file__).resolve().parent.parent, args.baseline_tree])
    rule_counts = sorted(int(r) for r in args.rules.split(","))
    ok = [bench(n, rule_counts, args) for n in sizes]
    sys.exit(0 if all(ok) else 1)


if __name__ == "__main__":
    main()
