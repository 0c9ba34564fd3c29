"""A FEC checker applying every rule of ACCOUNTING.md §4 (art. A47 A-1 LPF), as the
DGFiP's Test Compta Demat does. Independent of the exporter: it reads bytes only."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict

COLUMNS = (
    "JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib", "CompAuxNum", "CompAuxLib",
    "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit", "EcritureLet", "DateLet", "ValidDate", "Montantdevise",
    "Idevise",
)
MANDATORY = ("JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib", "PieceRef", "PieceDate",
             "EcritureLib", "Debit", "Credit", "ValidDate")
AMOUNT = re.compile(r"\d+(,\d{1,2})?")
SIGNED_AMOUNT = re.compile(r"-?\d+(,\d{1,2})?")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _date(text: str) -> dt.date | None:
    if not re.fullmatch(r"\d{8}", text):
        return None
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


def cents(text: str) -> int:
    units, _, frac = text.lstrip("-").partition(",")
    value = int(units) * 100 + int(frac.ljust(2, "0") or 0)
    return -value if text.startswith("-") else value


def check_fec(name: str, data: bytes, encoding: str = "utf-8") -> list[str]:
    """Every problem found (empty when the file is valid). A monthly file
    (``<SIREN>FEC<AAAAMMJJ>_<AAAAMM>.txt``) carries the year's file's EcritureNum: increasing,
    not from 1."""
    problems: list[str] = []
    m = re.fullmatch(r"(\d{9})FEC(\d{8})(_\d{6})?\.txt", name)
    if not m:
        problems.append(f"file name {name!r} is not <SIREN>FEC<AAAAMMJJ>.txt (or _<AAAAMM> for a month)")
    elif not _luhn(m.group(1)) or _date(m.group(2)) is None:
        problems.append(f"file name {name!r}: invalid SIREN or closing date")
    monthly = bool(m and m.group(3))
    if data.startswith(b"\xef\xbb\xbf"):
        problems.append("byte order mark before the header")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        return [*problems, f"not {encoding}: {exc}"]
    if not text.endswith(("\n", "\r")):
        problems.append("the last record does not end with CR and/or LF")
    lines = re.split(r"\r\n|\n|\r", text)
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return [*problems, "empty file"]
    header = lines[0]
    sep = "\t" if "\t" in header else "|"
    if header.split(sep) != list(COLUMNS):
        return [*problems, f"first line is not the 18 column names in order, separated by tab or |: {header!r}"]

    entries: dict[str, dict] = {}
    order: list[str] = []
    seen_non_opening = False
    last_valid: dt.date | None = None
    for n, line in enumerate(lines[1:], start=2):
        fields = line.split(sep)
        if len(fields) != 18:
            problems.append(f"line {n}: {len(fields)} fields instead of 18")
            continue
        row = dict(zip(COLUMNS, fields, strict=True))
        for col in MANDATORY:
            if not row[col].strip():
                problems.append(f"line {n}: {col} is mandatory")
        for col in ("EcritureDate", "PieceDate", "ValidDate"):
            if _date(row[col]) is None:
                problems.append(f"line {n}: {col} {row[col]!r} is not a date AAAAMMJJ")
        if row["DateLet"] and _date(row["DateLet"]) is None:
            problems.append(f"line {n}: DateLet {row['DateLet']!r} is not a date AAAAMMJJ")
        if row["DateLet"] and not row["EcritureLet"]:
            problems.append(f"line {n}: DateLet without EcritureLet")
        if not re.fullmatch(r"[1-8]\d{2}\S*", row["CompteNum"]):
            problems.append(f"line {n}: CompteNum {row['CompteNum']!r} does not start with 3 digits of the PCG")
        if bool(row["CompAuxNum"]) != bool(row["CompAuxLib"]):
            problems.append(f"line {n}: CompAuxNum and CompAuxLib go together")
        if bool(row["Montantdevise"]) != bool(row["Idevise"]):
            problems.append(f"line {n}: Montantdevise and Idevise go together")
        if row["Montantdevise"] and not SIGNED_AMOUNT.fullmatch(row["Montantdevise"]):
            problems.append(f"line {n}: Montantdevise {row['Montantdevise']!r} is not an amount with a decimal comma")
        amounts_ok = True
        for col in ("Debit", "Credit"):
            if not AMOUNT.fullmatch(row[col]):
                problems.append(f"line {n}: {col} {row[col]!r} is not an amount with a decimal comma, no thousands separator")
                amounts_ok = False
        if not amounts_ok:
            continue
        debit, credit = cents(row["Debit"]), cents(row["Credit"])
        if (debit != 0) == (credit != 0):
            problems.append(f"line {n}: exactly one of Debit / Credit must be non-zero ({row['Debit']} / {row['Credit']})")
        num = row["EcritureNum"]
        entry = entries.get(num)
        if entry is None:
            if order and order[-1] != num and num in entries:
                problems.append(f"line {n}: entry {num} is split across the file")
            entry = entries[num] = {"journal": row["JournalCode"], "date": row["EcritureDate"], "piece": row["PieceRef"],
                                    "piece_date": row["PieceDate"], "debit": 0, "credit": 0, "valid": row["ValidDate"],
                                    "line": n}
            order.append(num)
            opening = row["JournalCode"] == "AN"
            if opening and seen_non_opening:
                problems.append(f"line {n}: opening entry {num} after ordinary entries (à-nouveaux come first)")
            if not opening:
                seen_non_opening = True
                valid = _date(row["ValidDate"])
                if valid and last_valid and valid < last_valid:
                    problems.append(f"line {n}: entry {num} validated before the previous one (not in order of validation)")
                last_valid = valid or last_valid
        elif order[-1] != num:
            problems.append(f"line {n}: entry {num} is split across the file")
        for key, col in (("journal", "JournalCode"), ("date", "EcritureDate"), ("piece", "PieceRef"),
                         ("piece_date", "PieceDate"), ("valid", "ValidDate")):
            if entry[key] != row[col]:
                problems.append(f"line {n}: entry {num} has more than one {col}")
        entry["debit"] += debit
        entry["credit"] += credit
        e_date, v_date = _date(row["EcritureDate"]), _date(row["ValidDate"])
        if e_date and v_date and v_date < e_date:
            problems.append(f"line {n}: ValidDate {row['ValidDate']} before EcritureDate {row['EcritureDate']}")

    for num, entry in entries.items():
        if entry["debit"] != entry["credit"]:
            problems.append(f"entry {num}: debit {entry['debit']} ≠ credit {entry['credit']}")
    if not all(re.fullmatch(r"\d+", num) for num in order):
        problems.append("EcritureNum is not a number")
    elif monthly:
        if [int(num) for num in order] != sorted({int(num) for num in order}):
            problems.append(f"EcritureNum is not increasing in file order: {order[:20]}…")
    elif [int(num) for num in order] != list(range(1, len(order) + 1)):
        problems.append(f"EcritureNum is not continuous from 1 in file order: {order[:20]}…")
    return problems


def balances(data: bytes) -> dict[str, int]:
    """Signed balance in cents per CompteNum."""
    out: dict[str, int] = defaultdict(int)
    lines = data.decode("utf-8").splitlines()
    for line in lines[1:]:
        row = dict(zip(COLUMNS, line.split("\t"), strict=True))
        out[row["CompteNum"]] += cents(row["Debit"]) - cents(row["Credit"])
    return dict(out)
