"""The one place where a name becomes SQL text; values never do.

DuckDB cannot take a table or column name as a `?` parameter, so names are written into the
statement. Every such name passes through `quote_ident` (or `qualified` for `schema.table`),
which refuses a name DuckDB could misread and quotes the rest (a `"` inside a name is doubled,
the SQL standard's escape). Values go through `?` parameters or registered frames; file paths
through DuckDB's relation API (`con.read_parquet(path)`), never through string literals.

Column names reach the warehouse from a data set's spec, that is from a lender's file header.
The spec already refuses names outside `SAFE_NAME` (`data_contracts.spec_rules`), so a hostile
header is stopped at `datasets init`; quoting here is the second wall, for names that arrive
by any other road (an older spec, a frame built in a notebook).

    from risk_app.storage.sql import qualified, quote_ident
    con.execute(f"delete from {qualified('risk', table)} where {quote_ident(column)} = ?", [value])
"""

from __future__ import annotations

import re

from risk_app.errors import ConfigError

# A name as a lender's file header may reasonably spell it: letters, digits, spaces and a few
# marks. No quote of any kind, no ';', no backslash, no control or invisible character.
SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ .\-()%/#]{0,63}$")
SAFE_NAME_RULE = (
    "1 to 64 characters: letters, digits, spaces and _ . - ( ) % / #, "
    "starting with a letter, digit or _, not ending with a space"
)
# Tables and schemas are named by the code (and by `warehouse.write_table`'s callers): plain
# identifiers only.
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# A DuckDB type as `describe` prints it: BIGINT, VARCHAR, DECIMAL(18,3), TIMESTAMP WITH TIME
# ZONE, DOUBLE[]. Nested types (STRUCT, MAP, UNION) embed names and are refused.
_SQL_TYPE = re.compile(r"^[A-Z][A-Z0-9_]*( [A-Z][A-Z0-9_]*)*(\(\d+(, ?\d+)?\))?(\[\d*\])*$")


def is_safe_name(name: object) -> bool:
    """True when `name` is a text that `SAFE_NAME` allows (and does not end with a space)."""
    return isinstance(name, str) and bool(SAFE_NAME.match(name)) and not name.endswith(" ")


def check_name(name: object, what: str = "column") -> str:
    """`name` unchanged when it is safe, else one sentence saying why it is refused.

    Tables and schemas (`what` "table" or "schema") must be plain identifiers (`TABLE_NAME`)."""
    if what in ("table", "schema"):
        if not (isinstance(name, str) and TABLE_NAME.match(name)):
            raise ConfigError(
                f"invalid {what} name {repr(name)[:80]}: use letters, digits and underscores, "
                "starting with a letter or _"
            )
        return name
    if not is_safe_name(name):
        shown = repr(name)[:80]
        raise ConfigError(f"{what} name {shown} is not allowed: use {SAFE_NAME_RULE}")
    return str(name)


def quote_ident(name: str, what: str = "column") -> str:
    """`name` as a quoted SQL identifier; a name that is not safe is refused, never escaped past."""
    return '"' + check_name(name, what).replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    """`"schema"."table"`, both checked and quoted."""
    return f"{quote_ident(schema, 'schema')}.{quote_ident(table, 'table')}"


def sql_type(type_name: str) -> str:
    """A column type read from DuckDB itself, checked before it is written into DDL."""
    text = " ".join(str(type_name).split()).upper()
    if not _SQL_TYPE.match(text):
        raise ConfigError(f"column type {str(type_name)[:80]!r} cannot be added to a warehouse table")
    return text


__all__ = [
    "SAFE_NAME",
    "SAFE_NAME_RULE",
    "TABLE_NAME",
    "check_name",
    "is_safe_name",
    "qualified",
    "quote_ident",
    "sql_type",
]
