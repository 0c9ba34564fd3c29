"""The one CSV reader of every file a person gives the product (ledger records, a site's
products, a grant's budget): the writer's counterpart (funding.csvout).

It reads the whole file before anything is written, and refuses it at the first fault with
``ligne N, colonne X : raison`` — the physical line where the faulty record starts (the header
is line 1) and the column's name as the header spells it (or its rank when the cell has no
header). What it refuses by itself: bytes that are not UTF-8, an empty file or a header alone,
a header with an unknown, unnamed, repeated or missing column (a wrong delimiter shows as one
unknown column), a row with more cells than the header, unbalanced quotes, control characters
(NUL and the other C0 codes but tab, line feed and carriage return), cells too long, a cell a
spreadsheet would evaluate (``=``, ``@``, or ``+``/``-`` not followed by a number), too many
rows, and the same row twice where the caller says a key must be unique. What a cell *means*
(an amount, a date, an account) is the caller's to check: :meth:`CsvRow.error` makes its
refusal name the line and the column the same way.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from funding.errors import FundingError
from funding.i18n import gettext as _

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
FORMULA = re.compile(r"(?:[=@]|[+-](?![\d\s.,]))")
MAX_CELL = 2000
MAX_ROWS = 10_000


class CsvError(FundingError):
    """A file refused: ``line`` (1 = the header) and ``column`` say where, ``reason`` why."""

    def __init__(self, reason: str, *, line: int | None = None, column: str | None = None):
        self.reason, self.line, self.column = reason, line, column
        if line is not None and column is not None:
            text = _("ligne %(line)s, colonne %(column)s : %(reason)s", line=line, column=column, reason=reason)
        elif line is not None:
            text = _("ligne %(line)s : %(reason)s", line=line, reason=reason)
        else:
            text = reason
        super().__init__(text)


@dataclass(frozen=True)
class CsvRow:
    line: int
    cells: dict[str, str]  # canonical column → its text, stripped ("" when the row stops before it)
    names: Mapping[str, str]  # canonical column → as the header spells it

    def get(self, column: str) -> str:
        return self.cells.get(column, "")

    def error(self, column: str | None, reason: str) -> CsvError:
        return CsvError(reason, line=self.line, column=self.names.get(column, column) if column else None)


def _shown(value: str) -> str:
    value = CONTROL.sub("?", value)
    return value if len(value) <= 40 else value[:40] + "…"


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        prefix = data[start: exc.start].decode("utf-8", errors="replace")
        header = data.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace")
        delimiter = _delimiter(header, ",;\t")
        rank = prefix.count(delimiter)
        names = [h.strip() for h in header.split(delimiter)]
        column = names[rank] if line > 1 and rank < len(names) and names[rank] else f"n°{rank + 1}"
        byte = format(data[exc.start], "02X")
        raise CsvError(_("le fichier n'est pas en UTF-8 (octet 0x%(byte)s) : enregistrez-le en « CSV UTF-8 »", byte=byte),
                       line=line, column=column) from None


def _delimiter(header: str, delimiters: str) -> str:
    counts = [(header.count(d), -n) for n, d in enumerate(delimiters)]
    best = max(counts)
    return delimiters[-best[1]] if best[0] else delimiters[0]


def _open_quote_rank(line: str, delimiter: str) -> int:
    """The rank of the cell whose quote is never closed, on the line where its record starts."""
    rank, quoted = 0, False
    for char in line:
        if char == '"':
            quoted = not quoted
        elif char == delimiter and not quoted:
            rank += 1
    return rank


def read_csv(data: bytes | str, *, columns: Mapping[str, str], required: Iterable[str] = (),
             any_of: Collection[str] = (), delimiters: str = ",;", numeric: Collection[str] = (),
             unique: tuple[str, ...] = (), max_rows: int = MAX_ROWS, max_cell: int = MAX_CELL,
             expected: str = "") -> list[CsvRow]:
    """Every row of ``data``, checked as the module says, or a :class:`CsvError`.

    ``columns`` maps each accepted header (lower-case) to its canonical name; ``required`` must
    all be there, one of ``any_of`` at least; ``numeric`` columns may start with ``+``/``-``;
    rows with the same ``unique`` cells are refused; ``expected`` (e.g. ``kind,date,amount``)
    is shown when the header is wrong."""
    text = _decode(data) if isinstance(data, bytes) else data.lstrip("\ufeff")
    hint = _(" (en-tête attendu : %(header)s)", header=expected) if expected else ""
    if not text.strip():
        raise CsvError(_("le fichier est vide") + hint, line=1)
    lines = text.splitlines()
    delimiter = _delimiter(lines[0], delimiters)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] = []
    rows: list[CsvRow] = []
    seen: dict[tuple[str, ...], int] = {}
    start = 1
    names: dict[str, str] = {}
    keys: list[str] = []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if "field limit" in str(exc):
                physical = lines[start - 1].split(delimiter) if start - 1 < len(lines) else []
                rank = next((n for n, cell in enumerate(physical) if len(cell) > max_cell), 0)
                name = header[rank] if rank < len(header) and header[rank] else f"n°{rank + 1}"
                raise CsvError(_("cellule trop longue (au plus %(max)s caractères)", max=max_cell),
                               line=start, column=name) from None
            rank = _open_quote_rank(lines[start - 1] if start - 1 < len(lines) else "", delimiter)
            name = (header[rank] if rank < len(header) and header[rank] else f"n°{rank + 1}") if header else f"n°{rank + 1}"
            raise CsvError(_("guillemet non fermé ou mal placé (%(detail)s)", detail=str(exc)), line=start,
                           column=name) from None
        line, start = start, reader.line_num + 1
        if not header:
            header = [c.strip() for c in cells]
            if not any(header):
                raise CsvError(_("la première ligne doit être l'en-tête") + hint, line=1)
            for rank, raw in enumerate(header):
                name = raw or f"n°{rank + 1}"
                if CONTROL.search(raw):
                    raise CsvError(_("caractère de contrôle dans l'en-tête"), line=1, column=_shown(name))
                if not raw:
                    raise CsvError(_("colonne sans nom dans l'en-tête") + hint, line=1, column=name)
                key = columns.get(raw.lower())
                if key is None:
                    why = _("colonne inconnue") + (
                        _(" (le séparateur doit être l'un de : %(d)s)", d=" ".join(delimiters).replace("\t", "tab"))
                        if len(header) == 1 else "")
                    raise CsvError(why + hint, line=1, column=_shown(raw))
                if key in names:
                    raise CsvError(_("colonne en double"), line=1, column=_shown(raw))
                names[key] = raw
                keys.append(key)
            for key in required:
                if key not in names:
                    raise CsvError(_("colonne manquante") + hint, line=1, column=key)
            if any_of and not set(any_of) & set(names):
                raise CsvError(_("colonne manquante") + hint, line=1, column=" / ".join(any_of))
            continue
        if not any(c.strip() for c in cells):
            continue
        if len(rows) >= max_rows:
            raise CsvError(_("trop de lignes (au plus %(max)s)", max=max_rows), line=line)
        if len(cells) > len(keys):
            raise CsvError(_("cellule en trop : l'en-tête a %(n)s colonnes", n=len(keys)), line=line,
                           column=f"n°{len(keys) + 1}")
        values: dict[str, str] = {}
        for rank, raw in enumerate(cells):
            name = names[keys[rank]]
            control = CONTROL.search(raw)
            if control:
                code = format(ord(control.group()), "02X")
                raise CsvError(_("caractère de contrôle refusé (code 0x%(code)s)", code=code), line=line, column=name)
            if len(raw) > max_cell:
                raise CsvError(_("cellule trop longue (%(n)s caractères, au plus %(max)s)", n=len(raw), max=max_cell),
                               line=line, column=name)
            value = raw.strip()
            if value and FORMULA.match(value) and keys[rank] not in numeric:
                raise CsvError(_("formule refusée : une cellule ne commence pas par = + - ou @ (%(cell)s)",
                                 cell=_shown(value)), line=line, column=name)
            values[keys[rank]] = value
        row = CsvRow(line, values, names)
        if unique:
            key_cells = tuple(values.get(k, "").lower() for k in unique)
            if key_cells in seen:
                raise row.error(unique[0], _("même ligne que la ligne %(line)s", line=seen[key_cells]))
            seen[key_cells] = line
        rows.append(row)
    if not rows:
        raise CsvError(_("aucune ligne après l'en-tête"), line=2)
    return rows
