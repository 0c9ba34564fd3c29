"""Accent- and case-insensitive matching of names, the same on SQLite and PostgreSQL.

SQLite's ``lower()`` folds ASCII only, and neither database drops accents without an
extension; so both sides are folded the same way: the typed text in Python, the column by the
same Python function on SQLite, by nested ``replace()`` over the letters French (and its
neighbours) writes on PostgreSQL (SQLite's parser would overflow on that many)."""

from __future__ import annotations

import unicodedata

from sqlalchemy import String, func
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

_PLAIN = {
    "a": "àâäáãåÀÂÄÁÃÅ", "c": "çÇ", "e": "éèêëÉÈÊË", "i": "îïíìÎÏÍÌ", "o": "ôöóòõøÔÖÓÒÕØ",
    "u": "ùûüúÙÛÜÚ", "y": "ÿýŸÝ", "n": "ñÑ", "oe": "œŒ", "ae": "æÆ",
}


def fold(text: str) -> str:
    """'Élise' → 'elise', 'Œuvre' → 'oeuvre'."""
    text = text.replace("œ", "oe").replace("Œ", "oe").replace("æ", "ae").replace("Æ", "ae")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


class folded(FunctionElement):
    """``fold(column)`` in SQL: the Python ``fold`` itself on SQLite (registered on each
    connection by funding.db), nested ``replace()`` over the letters of ``_PLAIN`` elsewhere."""

    type = String()
    inherit_cache = True


@compiles(folded, "sqlite")
def _folded_sqlite(element, compiler, **kw) -> str:
    return f"fold({compiler.process(element.clauses, **kw)})"


@compiles(folded)
def _folded_sql(element, compiler, **kw) -> str:
    expr = func.lower(*element.clauses.clauses)
    for plain, accented in _PLAIN.items():
        for letter in accented:
            expr = func.replace(expr, letter, plain)
    return compiler.process(expr, **kw)


def register_sqlite(dbapi_connection) -> None:
    """Make ``fold`` callable from SQLite's SQL on this connection."""
    dbapi_connection.create_function("fold", 1, lambda value: fold(value) if isinstance(value, str) else value,
                                     deterministic=True)
