"""Real exports read in one place (issue 13): `values:`, named presets, `init --from-export`.

`values:` maps a platform's words to yours after `columns:` and before any
check, match or price (SPEC 1); a preset (`columns: zendesk`) stands for one
platform's header mapping and its defaults, which explicit settings override;
`init --from-export` writes a chargeback.yaml for an export it has looked at.
Each preset is tried on a small file shaped like that platform's export.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import ledger, row, write_workspace
from typer.testing import CliRunner

from chargeback.errors import WorkspaceError
from chargeback.workspace.load import load_workspace
from chargeback.workspace.presets import load_preset, preset_names, recognise
from cli import app

runner = CliRunner()

RULES = """
decisions:
  - {id: fee, title: Late fee, kind: fee, department: billing, effective: 2026-03-01}
  - {id: app, title: App v2, kind: launch, department: product, effective: 2026-03-01}
rules:
  - id: fee-calls
    decision: fee
    match: {channel: [phone], tags: [late-fee]}
  - id: app-chats
    decision: app
    match: {channel: [chat]}
"""
# phone 1.00, chat 0.50, email 3.00, anything else 10.00: a mapping slip shows in the money
COSTS = """
costs:
  currency: USD
  method: rates
  channels:
    phone: {per_contact: 1.00}
    chat: {per_contact: 0.50}
    email: {per_contact: 3.00}
  default: {per_contact: 10.00}
"""


def problems(root: Path) -> str:
    with pytest.raises(WorkspaceError) as info:
        load_workspace(root)
    return "\n".join(str(p) for p in info.value.problems)


def report(ws: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app, ["report", "--workspace", str(ws), "--out", str(ws / "out"), "--format", "csv", *args]
    )
    return result.exit_code, result.output


# ------------------------------------------------------------------- values:


PLATFORM = """
Ticket ID,Created at,Via,Tags,plan
t1,2026-03-02T10:00:00,Phone Call (Incoming),LATE_FEE vip,gold
t2,2026-03-03T10:00:00,Web Widget,,silver
t3,2026-03-04T10:00:00,Mail,late_fee,gold
t4,2026-03-05T10:00:00,sms,,gold
"""
MAPPING = """
columns: {contact_id: "Ticket ID", started_at: "Created at", channel: "Via", tags: "Tags"}
tags_separator: " "
values:
  channel:
    "Phone Call (Incoming)": phone
    "Web Widget": chat
    "Mail": email
  tags: {LATE_FEE: late-fee, late_fee: late-fee}
"""


def test_values_map_channels_and_each_tag_before_matching_and_pricing(ws: Path) -> None:
    write_workspace(ws, RULES, PLATFORM, settings=MAPPING, costs=COSTS)
    rows = ledger(ws)
    fee, app_line = row(rows, "2026-03", "fee"), row(rows, "2026-03", "app")
    assert (fee["contacts"], fee["cost"]) == ("1.000", "1.00")  # t1: phone + late-fee
    assert (app_line["contacts"], app_line["cost"]) == ("1.000", "0.50")  # t2: chat
    # t3 is email (3.00, its late-fee tag matches no phone rule); t4's sms is not listed, stays
    # sms and goes to default
    assert row(rows, "2026-03", "unattributed")["cost"] == "13.00"


def test_keys_are_exact_and_a_value_not_listed_stays(ws: Path) -> None:
    settings = MAPPING.replace('"Web Widget": chat', '"web widget": chat')
    write_workspace(ws, RULES, PLATFORM, settings=settings, costs=COSTS)
    rows = ledger(ws)  # "Web Widget" is not "web widget": t2 keeps its word, priced by default
    assert all(r["decision_id"] != "app" for r in rows)
    assert row(rows, "2026-03", "unattributed")["cost"] == "23.00"


def test_values_map_an_extra_column_that_rules_match_with_fields(ws: Path) -> None:
    rules = RULES + "  - {id: plan, decision: app, match: {fields: {plan: [premium]}}}\n"
    settings = MAPPING + "  plan: {gold: premium}\n"
    write_workspace(ws, rules, PLATFORM, settings=settings, costs=COSTS)
    # t2 (chat) and the three gold plans; t1 shares its weight with the late fee
    assert row(ledger(ws), "2026-03", "app")["contacts"] == "3.500"


def test_check_and_explain_see_the_mapped_values(ws: Path) -> None:
    write_workspace(ws, RULES, PLATFORM, settings=MAPPING, costs=COSTS)
    result = runner.invoke(app, ["explain", "t1", "--workspace", str(ws), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert "phone" in json.dumps(doc) and "Phone Call (Incoming)" not in json.dumps(doc)
    checked = runner.invoke(app, ["check", "--workspace", str(ws), "--format", "json"])
    assert checked.exit_code == 0, checked.output
    assert "unpriced" not in checked.stdout


def test_an_unpriced_mapped_channel_is_named_by_its_mapped_word(ws: Path) -> None:
    costs = COSTS.replace("  default: {per_contact: 10.00}\n", "")
    settings = MAPPING.replace('"Mail": email', '"Mail": letter')
    write_workspace(ws, RULES, PLATFORM, settings=settings, costs=costs)
    code, output = report(ws)
    assert code == 1 and "'letter'" in output and "'sms'" in output


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            "  chanel: {a: b}\n",
            "chargeback.yaml:4: setting 'values': 'chanel' is not a contacts "
            "column (did you mean 'channel'?)",
        ),
        (
            "  started_at: {a: b}\n",
            "chargeback.yaml:4: setting 'values': 'started_at' is a "
            "timestamp: values: maps text columns only",
        ),
        ("  handle_seconds: {a: b}\n", "'handle_seconds' is a number"),
        (
            "  Via: {Mail: email}\n",
            "chargeback.yaml:4: setting 'values': 'Via' is the export's "
            "header for channel (columns:); values: names a column as chargeback knows it, after "
            "columns:, so write channel:",
        ),
        (
            "  channel: [phone]\n",
            "chargeback.yaml:4: setting 'values': 'channel' must map the export's values to yours",
        ),
        (
            "  channel:\n    Mail: [email]\n",
            "chargeback.yaml:5: setting 'values': channel: 'Mail' must map to one value",
        ),
        (
            '  channel:\n    Mail: ""\n',
            "chargeback.yaml:5: setting 'values': channel: 'Mail': its new value cannot be blank",
        ),
        (
            '  channel:\n    " Mail": email\n',
            "chargeback.yaml:5: setting 'values': channel: "
            "' Mail': a value to map has blanks around it",
        ),
        (
            '  tags:\n    a: "b|c"\n',
            "chargeback.yaml:5: setting 'values': tags: 'a': a tag cannot hold '|'",
        ),
        ("  orders.amount: {a: b}\n", "values: maps the contacts' columns only"),
    ],
)
def test_a_bad_values_setting_is_a_located_error(ws: Path, values: str, expected: str) -> None:
    settings = 'columns: {channel: "Via"}\nvalues:\n' + values
    write_workspace(ws, RULES, PLATFORM, settings=settings, costs=COSTS)
    assert expected in problems(ws)


def test_a_values_column_the_contacts_lack_is_located_in_chargeback_yaml(ws: Path) -> None:
    settings = MAPPING + "  segment: {a: b}\n"
    write_workspace(ws, RULES, PLATFORM, settings=settings, costs=COSTS)
    code, output = report(ws)
    assert code == 1
    assert "chargeback.yaml:11: values: 'segment' is not a column of the contacts" in output


def test_a_canonical_column_the_contacts_lack_is_no_error(ws: Path) -> None:
    settings = MAPPING + "  region: {EU: eu-west}\n"
    write_workspace(ws, RULES, PLATFORM, settings=settings, costs=COSTS)
    assert row(ledger(ws), "2026-03", "fee")["contacts"] == "1.000"


def test_a_numeric_key_maps_a_code(ws: Path) -> None:
    contacts = "contact_id,started_at,channel\nc1,2026-03-02,3\nc2,2026-03-02,7\n"
    settings = "values:\n  channel: {3: phone, 7: chat}\n"
    write_workspace(ws, RULES.replace(", tags: [late-fee]", ""), contacts, settings, costs=COSTS)
    assert row(ledger(ws), "2026-03", "fee")["cost"] == "1.00"
    assert row(ledger(ws), "2026-03", "app")["cost"] == "0.50"


def test_a_parquet_list_of_tags_is_mapped_tag_by_tag(ws: Path) -> None:
    import polars as pl

    write_workspace(ws, RULES, PLATFORM, settings=MAPPING, costs=COSTS)
    (ws / "contacts.csv").unlink()
    pl.DataFrame(
        {
            "Ticket ID": ["p1", "p2"],
            "Created at": ["2026-03-02T10:00:00", "2026-03-02T11:00:00"],
            "Via": ["Phone Call (Incoming)", "Phone Call (Incoming)"],
            "Tags": [["LATE_FEE", " x "], ["other"]],
        }
    ).write_parquet(ws / "contacts.parquet")
    (ws / "chargeback.yaml").write_text("contacts: contacts.parquet\n" + textwrap.dedent(MAPPING))
    assert row(ledger(ws), "2026-03", "fee")["contacts"] == "1.000"


# ------------------------------------------------------------------- presets

# One small file per preset, shaped like that platform's export (docs/exports/).
SHAPED = {
    "zendesk": """
        Id,Requester,Requester id,Subject,Tags,Status,Via,Created at
        101,Al,9001,Fee?,late-fee billing,solved,Phone call (incoming),2026-03-02 09:14:00 +0100
        102,Bob,9002,App crash,app ios,open,Web Widget,2026-03-03 11:40:00 +0100
        103,Cy,9003,Address,,solved,Mail,2026-03-04 15:05:00 +0100
        """,
    "freshdesk": """
        Ticket ID,Subject,Status,Priority,Source,Type,Agent,Group,Created time,Tags,Contact ID
        201,Fee?,Closed,Low,Phone,Question,Kim,Billing,2026-03-02 09:14:00,"late-fee,billing",77
        202,App crash,Open,High,Chat,Incident,Lee,App,2026-03-03 11:40:00,app,78
        203,Address,Resolved,Low,Email,Question,Kim,Billing,2026-03-04 15:05:00,,79
        """,
    "salesforce": """
        Case Number,Subject,Case Origin,Case Reason,Status,Date/Time Opened,Account ID
        00001001,Late fee?,Phone,Billing,Closed,3/2/2026 9:14 AM,001A
        00001002,App crash,Chat,Technical,New,3/3/2026 11:40 AM,001B
        00001003,Address,Email,Account,Closed,3/4/2026 3:05 PM,001C
        """,
    "intercom": """
        Conversation ID,Conversation started at,Channel,Conversation tags,State,User ID
        301,2026-03-02 09:14:00,Phone,"late-fee,billing",closed,u1
        302,2026-03-03 11:40:00,Chat,app,open,u2
        303,2026-03-04 15:05:00,Email,,closed,u3
        """,
    "genesys": """
        Conversation ID,Date,Media Type,Direction,Queue,Wrap-up,Duration
        4a1f,2026-03-02T09:14:00Z,Voice,Inbound,Billing,Late fee,00:05:12
        4a20,2026-03-03T11:40:00Z,Chat,Inbound,App,App crash,00:09:40
        4a21,2026-03-04T15:05:00Z,Email,Inbound,Billing,Address,00:02:00
        """,
}
# the first contact is a phone call (a late fee where tags exist), the second a chat
PRESET_RULES = """
decisions:
  - {id: fee, title: Late fee, kind: fee, department: billing, effective: 2026-03-01}
  - {id: app, title: App v2, kind: launch, department: product, effective: 2026-03-01}
rules:
  - {id: fee-calls, decision: fee, match: {channel: [phone]}}
  - {id: app-chats, decision: app, match: {channel: [chat]}}
"""


def test_every_preset_has_a_shaped_file_and_a_docs_page() -> None:
    assert set(preset_names()) == set(SHAPED)
    docs = Path(__file__).resolve().parents[1] / "docs"
    for name in preset_names():
        assert (docs.parent / load_preset(name).docs).is_file(), name
        assert (docs / "exports" / f"{name}.md").is_file()


@pytest.mark.parametrize("name", sorted(SHAPED))
def test_a_preset_reads_its_platforms_export(ws: Path, name: str) -> None:
    write_workspace(
        ws, PRESET_RULES, textwrap.dedent(SHAPED[name]), settings=f"columns: {name}\n", costs=COSTS
    )
    rows = ledger(ws)
    assert row(rows, "2026-03", "fee")["cost"] == "1.00"  # the call, as phone
    assert row(rows, "2026-03", "app")["cost"] == "0.50"  # the chat, as chat
    assert row(rows, "2026-03", "unattributed")["cost"] == "3.00"  # the e-mail, as email


@pytest.mark.parametrize("name", sorted(SHAPED))
def test_a_preset_is_recognised_by_its_headers(name: str) -> None:
    header = textwrap.dedent(SHAPED[name]).strip().splitlines()[0].split(",")
    found = recognise(header)
    assert found is not None and found.name == name


def test_the_preset_s_tags_are_split_its_way(ws: Path) -> None:
    rules = PRESET_RULES.replace("match: {channel: [phone]}", "match: {tags: [late-fee]}")
    for name in ("zendesk", "freshdesk", "intercom"):
        write_workspace(
            ws, rules, textwrap.dedent(SHAPED[name]), settings=f"columns: {name}\n", costs=COSTS
        )
        assert row(ledger(ws), "2026-03", "fee")["contacts"] == "1.000", name


def test_what_the_user_sets_wins_over_the_preset(ws: Path) -> None:
    shaped = textwrap.dedent(SHAPED["salesforce"]).replace("3/2/2026 9:14 AM", "2026-03-02 09:14")
    shaped = shaped.replace("3/3/2026 11:40 AM", "2026-03-03 11:40")
    shaped = shaped.replace("3/4/2026 3:05 PM", "2026-03-04 15:05")
    settings = """
        columns: {preset: salesforce, text: "Status"}
        timestamp_format: "%Y-%m-%d %H:%M"
        values:
          channel: {Chat: phone}
    """
    write_workspace(ws, PRESET_RULES, shaped, settings=settings, costs=COSTS)
    loaded = load_workspace(ws).settings
    assert dict(loaded.columns)["text"] == "Status" and loaded.preset == "salesforce"
    channel = dict(next(vm.pairs for vm in loaded.values if vm.column == "channel"))
    assert channel["Chat"] == "phone" and channel["Phone"] == "phone"  # merged key by key
    rows = ledger(ws)
    assert row(rows, "2026-03", "fee")["contacts"] == "2.000"


def test_timestamp_format_null_sets_the_preset_s_layout_aside(ws: Path) -> None:
    shaped = textwrap.dedent(SHAPED["salesforce"]).replace("3/2/2026 9:14 AM", "2026-03-02")
    shaped = shaped.replace("3/3/2026 11:40 AM", "2026-03-03")
    shaped = shaped.replace("3/4/2026 3:05 PM", "2026-03-04")
    settings = "columns: salesforce\ntimestamp_format: null\n"
    write_workspace(ws, PRESET_RULES, shaped, settings=settings, costs=COSTS)
    assert row(ledger(ws), "2026-03", "fee")["cost"] == "1.00"


def test_a_preset_s_optional_header_may_be_missing_but_a_required_one_may_not(ws: Path) -> None:
    shaped = textwrap.dedent(SHAPED["zendesk"]).replace("Tags,", "Labels,")
    write_workspace(ws, PRESET_RULES, shaped, settings="columns: zendesk\n", costs=COSTS)
    assert row(ledger(ws), "2026-03", "fee")["cost"] == "1.00"
    shaped = shaped.replace("Via,", "Channel,")
    write_workspace(ws, PRESET_RULES, shaped, settings="columns: zendesk\n", costs=COSTS)
    code, output = report(ws)
    assert code == 1 and "missing column 'Via'" in output


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            "columns: zendsk\n",
            "chargeback.yaml:2: columns: 'zendsk' is not a preset (did you "
            "mean 'zendesk'?); the presets are freshdesk, genesys, intercom, salesforce, zendesk",
        ),
        (
            "columns: {preset: fresh-desk}\n",
            "chargeback.yaml:2: setting 'columns': columns: "
            "'fresh-desk' is not a preset (did you mean 'freshdesk'?)",
        ),
        ("columns: [zendesk]\n", "columns: must be a mapping or a preset"),
    ],
)
def test_an_unknown_preset_is_a_located_error(ws: Path, settings: str, expected: str) -> None:
    write_workspace(ws, PRESET_RULES, SHAPED["zendesk"], settings=settings, costs=COSTS)
    assert expected in problems(ws)


def test_a_preset_name_is_read_in_any_case(ws: Path) -> None:
    write_workspace(
        ws, PRESET_RULES, textwrap.dedent(SHAPED["zendesk"]), "columns: Zendesk\n", costs=COSTS
    )
    assert load_workspace(ws).settings.preset == "zendesk"


# ------------------------------------------------------ init --from-export


def test_init_from_a_zendesk_export_then_report_runs(tmp_path: Path) -> None:
    export = tmp_path / "exports" / "tickets.csv"
    export.parent.mkdir()
    export.write_text(textwrap.dedent(SHAPED["zendesk"]).lstrip())
    ws = tmp_path / "acme"
    result = runner.invoke(app, ["init", "--from-export", str(export), str(ws)])
    assert result.exit_code == 0, result.output
    assert "Zendesk" in result.output and "zendesk" in result.output
    settings = yaml.safe_load((ws / "chargeback.yaml").read_text())
    assert settings["columns"] == "zendesk" and settings["contacts"] == "../exports/tickets.csv"
    assert not (ws / "contacts").exists()  # no example contacts beside the real export
    code, output = report(ws)
    assert code == 0, output
    lines = (ws / "out" / "ledger.csv").read_text().splitlines()
    assert lines[0].startswith("period,") and any(ln.startswith("2026-03,") for ln in lines)


def test_init_infers_a_mapping_the_layouts_and_lists_the_channel_words(tmp_path: Path) -> None:
    export = tmp_path / "calls.csv"
    export.write_text(
        "Ticket ID,Created Date,Channel,Category,Labels,Summary,Handle Time\n"
        "T1,14/03/2026 13:45,Phone Call (Incoming),billing.late_fee,fee;late,Late fee,00:05:00\n"
        "T2,15/03/2026 09:00,Web Widget,billing,fee,Bill,00:02:10\n"
        "T3,16/03/2026 10:30,Carrier pigeon,tech,,Login,00:01:00\n"
    )
    result = runner.invoke(app, ["init", "--from-export", str(export), str(tmp_path / "ws")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "ws" / "chargeback.yaml").read_text()
    settings = yaml.safe_load(text)
    assert settings["columns"] == {
        "contact_id": "Ticket ID",
        "started_at": "Created Date",
        "channel": "Channel",
        "reason": "Category",
        "tags": "Labels",
        "text": "Summary",
    }
    assert settings["timestamp_format"] == "%d/%m/%Y %H:%M"
    assert settings["tags_separator"] == ";"
    assert "values" not in settings  # a commented block to fill in
    assert '#     "Phone Call (Incoming)": phone' in text
    assert '#     "Web Widget": chat' in text
    assert '#     "Carrier pigeon": ""' in text
    assert "'Handle Time' holds h:mm:ss" in result.output  # what it could not infer
    assert report(tmp_path / "ws")[0] == 0
    # uncommenting the block is all it takes to map the words
    block = 'values:\n  channel:\n    "Phone Call (Incoming)": phone\n    "Web Widget": chat\n'
    (tmp_path / "ws" / "chargeback.yaml").write_text(text + block)
    assert load_workspace(tmp_path / "ws").settings.values[0].column == "channel"


def test_init_says_what_it_could_not_infer(tmp_path: Path) -> None:
    export = tmp_path / "odd.csv"
    export.write_text("Key,When,Note\nk1,2026-03-01,hello\n")
    result = runner.invoke(app, ["init", "--from-export", str(export), str(tmp_path / "ws")])
    assert result.exit_code == 0, result.output
    assert "no channel column found" in result.output
    assert "no contact id column found" in result.output
    yaml.safe_load((tmp_path / "ws" / "chargeback.yaml").read_text())  # still valid YAML


def test_init_writes_into_the_current_folder_and_never_over_a_chargeback_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = tmp_path / "tickets.csv"
    export.write_text(textwrap.dedent(SHAPED["intercom"]).lstrip())
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init", "--from-export", "tickets.csv"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(Path("chargeback.yaml").read_text())["contacts"] == "tickets.csv"
    assert Path("rules/costs.yaml").is_file()
    again = runner.invoke(app, ["init", "--from-export", "tickets.csv"])
    assert again.exit_code == 1 and "chargeback.yaml: already exists" in again.output


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'a,b\n1,"2\n', "bad.csv:2: a quoted field that opens on line 2 is never closed"),
        (b"a,b\n1,\xff\n", "bad.csv:2: not UTF-8"),
        (b"", "bad.csv: is empty"),
    ],
)
def test_a_bad_export_is_a_located_error(tmp_path: Path, content: bytes, expected: str) -> None:
    export = tmp_path / "bad.csv"
    export.write_bytes(content)
    result = runner.invoke(app, ["init", "--from-export", str(export), str(tmp_path / "ws")])
    assert result.exit_code == 1 and expected in result.output
    assert not (tmp_path / "ws").exists()


def test_init_without_a_folder_or_an_export_is_a_usage_error() -> None:
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 2 and "chargeback init DIR" in result.output


def test_the_written_settings_load_for_every_preset(tmp_path: Path) -> None:
    for name, shaped in SHAPED.items():
        export = tmp_path / f"{name}.csv"
        export.write_text(textwrap.dedent(shaped).lstrip())
        ws = tmp_path / f"ws-{name}"
        result = runner.invoke(app, ["init", "--from-export", str(export), str(ws)])
        assert result.exit_code == 0, result.output
        assert load_workspace(ws).settings.preset == name
        code, output = report(ws)
        assert code == 0, (name, output)


# ------------------------------------------------------------------- docs


EXPORT_PAGES = sorted((Path(__file__).resolve().parents[1] / "docs" / "exports").glob("*.md"))


@pytest.mark.parametrize("page", EXPORT_PAGES, ids=lambda p: p.name)
def test_the_yaml_blocks_of_the_export_pages_load_as_settings(page: Path, tmp_path: Path) -> None:
    from test_docs import fenced_blocks

    for block in (b for b in fenced_blocks(page) if b.lang == "yaml"):
        ws = tmp_path / f"ws-{block.line}"
        write_workspace(ws, PRESET_RULES, "contact_id,started_at,channel\n", costs=COSTS)
        (ws / "chargeback.yaml").write_text(block.text)
        load_workspace(ws)  # raises, with the line, if a block is not valid


@pytest.mark.parametrize("name", sorted(SHAPED))
def test_each_export_page_lists_its_preset_s_headers_and_words(name: str) -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "exports" / f"{name}.md").read_text()
    preset = load_preset(name)
    for column, header in preset.columns:
        assert f"| `{column}` | `{header}` |" in text, (name, column)
    for vm in preset.values:
        for word, _ in vm.pairs:
            assert f"`{word}`" in text, (name, word)
    assert "## Sources" in text and "## Assumptions" in text


# ------------------------------------------------------------- the inference


@pytest.mark.parametrize(
    ("stamps", "layout", "note"),
    [
        (["2026-03-14 13:45:30", "2026-03-15 08:00:00"], None, None),  # ISO: nothing to set
        (["3/14/26 1:45 PM", "12/1/26 9:05 AM"], "%m/%d/%y %I:%M %p", None),  # not year 26
        (["14.03.2026 13:45", "01.04.2026 08:00"], "%d.%m.%Y %H:%M", None),
        (["03/04/2026 13:45", "05/06/2026 08:00"], "%m/%d/%Y %H:%M", "month/day and as day/month"),
        (["31/03/2026 13:45", "05/06/2026 08:00"], "%d/%m/%Y %H:%M", None),
        (["soon", "later"], None, "could not tell the timestamps' layout"),
    ],
)
def test_the_timestamp_layout_is_one_the_loader_reads_every_sample_with(
    tmp_path: Path, stamps: list[str], layout: str | None, note: str | None
) -> None:
    from chargeback.data.inference import inspect_export

    export = tmp_path / "x.csv"
    rows = [f"c{i},{s},Phone" for i, s in enumerate(stamps)]
    export.write_text("Ticket ID,Created at,Channel\n" + "\n".join(rows) + "\n")
    found = inspect_export(export)
    assert found.timestamp_format == layout
    assert found.naive  # no offset anywhere: the timezone comment says to set it
    notes = " ".join(found.notes)
    assert (note in notes) if note else not notes


@pytest.mark.parametrize(
    ("header", "mapped"),
    [
        # NYC Open Data's Council constituent services (shared/realdata) and 311
        (
            "unique_key,account,opendate,closedate,complaint_type,descriptor,zip,borough",
            {
                "contact_id": "unique_key",
                "started_at": "opendate",
                "reason": "complaint_type",
                "text": "descriptor",
                "region": "borough",
            },
        ),
        (
            "Unique Key,Created Date,Complaint Type,Descriptor,Borough,Open Data Channel Type",
            {
                "contact_id": "Unique Key",
                "started_at": "Created Date",
                "channel": "Open Data Channel Type",
                "reason": "Complaint Type",
                "text": "Descriptor",
                "region": "Borough",
            },
        ),
        # the CFPB's consumer complaint database
        (
            "Date received,Product,Sub-product,Issue,Sub-issue,Consumer complaint narrative,"
            "Company,State,ZIP code,Tags,Submitted via,Complaint ID",
            {
                "contact_id": "Complaint ID",
                "started_at": "Date received",
                "channel": "Submitted via",
                "reason": "Issue",
                "tags": "Tags",
                "text": "Consumer complaint narrative",
                "product": "Product",
            },
        ),
        # the FCC's Comcast complaints (shared/realdata)
        (
            "Ticket #,Customer Complaint,Date,Received Via,City,State,Status",
            {
                "contact_id": "Ticket #",
                "started_at": "Date",
                "channel": "Received Via",
                "text": "Customer Complaint",
            },
        ),
    ],
)
def test_public_complaint_exports_headers_map(
    tmp_path: Path, header: str, mapped: dict[str, str]
) -> None:
    from chargeback.data.inference import inspect_export

    export = tmp_path / "x.csv"
    export.write_text(header + "\n" + ",".join(["x"] * (header.count(",") + 1)) + "\n")
    assert inspect_export(export).columns == mapped


@pytest.mark.parametrize(
    ("sample", "example"),
    [
        ("22-04-15", '"%d-%m-%y" or "%m-%d-%y", whichever the export writes'),
        ("04.08.2015 10:22", '"%d.%m.%Y %H:%M" or "%m.%d.%Y %H:%M", whichever the export writes'),
        ("2015/04/22 10:22:56", '"%Y/%m/%d %H:%M:%S"'),
        ("soon", '"%d/%m/%Y %H:%M"'),  # no shape to follow: the usual example
    ],
)
def test_the_layout_note_s_example_has_the_sample_s_shape(sample: str, example: str) -> None:
    from chargeback.data.inference import example_layout

    assert example_layout(sample) == example


def test_a_layout_not_told_is_left_to_set_not_called_iso(tmp_path: Path) -> None:
    """The Comcast FCC export's '22-04-15' reads as no known layout: the written settings
    say to set timestamp_format, as the run's notes do, and never that it is not needed."""
    export = tmp_path / "tickets.csv"
    export.write_text("Ticket #,Date,Received Via\n1,22-04-15,Internet\n2,04-08-15,Internet\n")
    result = CliRunner().invoke(app, ["init", "--from-export", str(export), str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    assert "could not tell the timestamps' layout" in result.output
    assert '"%d-%m-%y" or "%m-%d-%y"' in " ".join(result.output.split())
    written = (tmp_path / "w" / "chargeback.yaml").read_text()
    assert "not needed" not in written and "ISO 8601" not in written
    line = next(x for x in written.splitlines() if "timestamp_format" in x)
    assert line.startswith('# timestamp_format: "???"') and '"22-04-15"' in line
    assert yaml.safe_load(written).get("timestamp_format") is None  # a comment: nothing set


def test_a_layout_read_as_iso_in_the_wrong_century_names_timestamp_format(
    tmp_path: Path,
) -> None:
    """'22-04-15' parses as ISO 8601 in the year 22: each row is outside the years, and
    the run says why (timestamp_format) and that every row failing means the settings."""
    export = tmp_path / "tickets.csv"
    rows = [f"{i},{(i % 28) + 1:02d}-04-15,Internet" for i in range(25)]
    export.write_text("Ticket #,Date,Received Via\n" + "\n".join(rows) + "\n")
    result = runner.invoke(app, ["init", "--from-export", str(export), str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    ws = tmp_path / "w"
    (ws / "chargeback.yaml").write_text(
        (ws / "chargeback.yaml").read_text() + 'values:\n  channel:\n    "Internet": email\n'
    )
    result = runner.invoke(app, ["check", "--workspace", str(ws)])
    assert result.exit_code == 1
    assert "outside the years 1900-2199: '01-04-15'" in result.output
    assert "set timestamp_format in chargeback.yaml" in result.output
    assert "every row is bad: check the settings" in result.output
    assert "--on-bad-rows quarantine" not in result.output  # it would set every row aside
    with_layout = (ws / "chargeback.yaml").read_text() + 'timestamp_format: "%d-%m-%y"\n'
    (ws / "chargeback.yaml").write_text(with_layout)
    result = runner.invoke(app, ["check", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    assert "25 contacts" in result.output and "2015-04" in result.output


def test_a_new_name_does_not_take_a_header_an_older_one_had(tmp_path: Path) -> None:
    from chargeback.data.inference import inspect_export

    export = tmp_path / "x.csv"
    export.write_text("ID,Unique Key,Open Date,Start Time,Channel\nx,x,x,x,x\n")
    found = inspect_export(export).columns
    assert found["started_at"] == "Start Time"
    assert found["contact_id"] == "ID"


def test_an_offset_on_every_timestamp_needs_no_timezone_warning(tmp_path: Path) -> None:
    from chargeback.data.inference import inspect_export

    export = tmp_path / "x.csv"
    export.write_text("id,created_at,channel\n1,2026-03-01T10:00:00Z,chat\n2,2026-03-01,chat\n")
    assert inspect_export(export).naive
    export.write_text("id,created_at,channel\n1,2026-03-01T10:00:00Z,chat\n")
    assert not inspect_export(export).naive
