"""SPEC 10's settings: `engine`, and `contacts`/`orders` as `{uri, table}` or `{uri, query}`.

Checked at load like every other setting, so a password written into the YAML
(in the address or as a key) is refused at its line before anything connects,
and an engine that cannot run a source's address is named with both places.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from chargeback.workspace.fields import BadValue, Item, as_path, as_text, one_of
from chargeback.workspace.limits import shown
from chargeback.workspace.model import ENGINES, SCHEME_ENGINES, DbSource
from chargeback.workspace.yamlio import YMap

SOURCE_KEYS = ("uri", "table", "query")
MAX_QUERY = 100_000  # characters: a query, not a dump
SECRET_WORDS = ("pass", "secret", "token", "credential", "pwd")


def as_uri(value: Any) -> str:
    """A database address whose scheme names an engine, and no password in it."""
    text = as_path(value)  # refuses a password in the address
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme not in SCHEME_ENGINES:
        known = ", ".join(f"{s}://" for s in ("postgresql", "duckdb", "sc"))
        raise BadValue(f"'{shown(text)}' is not a database address (known: {known})")
    try:
        query = urlsplit(text).query
    except ValueError:
        raise BadValue(f"'{shown(text)}' is not a valid address") from None
    if any(word in query.lower() for word in SECRET_WORDS):
        raise BadValue(
            "holds a credential in its parameters: credentials are never kept in a file; "
            "give them in the environment (for PostgreSQL, PGPASSWORD)"
        )
    return text


def as_table(value: Any) -> str:
    """`schema.table` or `table`: names, each quoted by the engine's dialect when used."""
    text = as_text(value, 300).strip()
    parts = text.split(".")
    if not text or any(not p.strip() for p in parts) or len(parts) > 3:
        raise BadValue(f"'{shown(text)}' is not a table name (table, schema.table)")
    return text


def as_query(value: Any) -> str:
    text = as_text(value, MAX_QUERY).strip().rstrip(";").strip()
    if not text:
        raise BadValue("is empty: give a SELECT")
    if ";" in text:
        raise BadValue("holds more than one statement: give one SELECT")
    return text


def source_setting(owner: Item, key: str) -> str | DbSource | None:
    """`contacts:`/`orders:` as a path (text) or a database source (a mapping)."""
    value = owner.node.get(key)
    if value is None:
        return None
    if not isinstance(value, YMap):
        return owner.get(key, as_path, None)
    item = owner.sub(key, f"setting '{key}'")
    if item is None:
        return None
    for name in item.node:
        if _secret(name):
            item.error(
                name,
                f"'{shown(name)}': credentials are never kept in a file; give them in the "
                "environment (for PostgreSQL, PGPASSWORD; the driver reads it)",
            )
    item.check_keys([*SOURCE_KEYS, *[str(n) for n in item.node if _secret(n)]])
    uri = item.get("uri", as_uri, None, required=True)
    table = item.get("table", as_table, None)
    query = item.get("query", as_query, None)
    given = [k for k in ("table", "query") if k in item.node]
    if not given:
        item.error(None, "give the table to read ('table: support.contacts') or a 'query'")
    elif len(given) == 2:
        item.error("query", "give either 'table' or 'query', not both")
    if uri is None or (table is None) == (query is None):
        return None
    return DbSource(uri=uri, table=table, query=query, place=owner.place(key))


def _secret(name: object) -> bool:
    return any(word in str(name).lower() for word in SECRET_WORDS)


def engine_setting(owner: Item | None, sources: list[tuple[str, Any]]) -> str | None:
    """`engine:`, checked against the database sources' schemes (SPEC 10)."""
    if owner is None:
        return None
    engine = owner.get("engine", one_of(ENGINES), None)
    for key, source in sources:
        if engine is not None and isinstance(source, DbSource) and source.engine != engine:
            owner.error(
                "engine",
                f"engine: '{engine}' cannot read {key} at {source.uri.split('://', 1)[0]}:// "
                f"({source.place}); that address runs on the {source.engine} engine",
            )
    return engine
