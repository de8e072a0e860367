"""Statements written as for SQLAlchemy's text() (`:name` parameters), run on a bare psycopg
connection. No SQLAlchemy here: `pickwise import` writes through psycopg alone, so it starts
without loading SQLAlchemy (docs/benchmarks.md, "i26d")."""

import re

# Found as text() finds them (its own pattern), so `::type` casts are left alone.
_PARAMETER = re.compile(r"(?<![:\w\x5c]):(\w+)(?!:)")


def psycopg_sql(sql: str) -> str:
    """`sql` with text()'s `:name` parameters as psycopg's `%(name)s`."""
    return _PARAMETER.sub(r"%(\1)s", sql.replace("%", "%%"))
