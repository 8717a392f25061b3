"""The SQL store's ``MetaData`` (with its naming convention) and the column helpers every table module shares."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Integer, MetaData, Text, func, literal_column

__all__ = ["SETTING_KEY_LENGTH", "VALUE_INDEX_PREFIX", "BigId", "metadata", "value_prefix"]

# Integer autoincrement keys: BIGINT on PostgreSQL, the rowid alias on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# Setting keys hold e.g. "policy:<model name>:<alias>": names have up to 250 characters and aliases up to 100.
# Every setting's event subject is "setting:<key>", and event subjects have up to 500 characters.
SETTING_KEY_LENGTH = 400

# Params and tags are indexed on (key, the first VALUE_INDEX_PREFIX characters of value): a B-tree entry on
# PostgreSQL must fit in a third of a page (2,704 bytes), which a whole value need not (values have no length
# limit). 250 + 200 characters are at most 1,800 bytes in UTF-8, so every entry fits. Searches compare
# value_prefix(value) with the prefix of the wanted text (indexed), then the whole value.
VALUE_INDEX_PREFIX = 200


def value_prefix(value: Any) -> ColumnElement[str]:
    """``substr(value, 1, 200)``, written with literal numbers so that both databases match the index to it."""
    return func.substr(value, literal_column("1"), literal_column(str(VALUE_INDEX_PREFIX)), type_=Text)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
