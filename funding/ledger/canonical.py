"""Canonical serialisation and the SHA-256 chain of entries and closings.

An entry's hash is ``sha256(prev_hash + "\\n" + canonical_json(entry))``; the JSON has
sorted keys, no spaces, UTF-8, dates in ISO 8601, timestamps in UTC to the
microsecond, and the postings in line order. Changing anything here breaks every
existing chain: treat it as a file format.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Sequence

FORMAT_VERSION = 1


def _ts(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_document(
    *,
    org_id: int,
    number: int,
    journal: str,
    entry_date: dt.date,
    label: str,
    piece_ref: str,
    piece_date: dt.date,
    site_id: int,
    funding_source: str,
    reverses_id: int | None,
    source_key: str | None,
    grant_id: int | None,
    validated_at: dt.datetime,
    postings: Sequence[tuple],
) -> bytes:
    """``postings``: (line_no, account, aux, amount, currency, label) in line order."""
    doc = {
        "v": FORMAT_VERSION,
        "org": org_id,
        "n": number,
        "j": journal,
        "d": entry_date.isoformat(),
        "l": label,
        "pr": piece_ref,
        "pd": piece_date.isoformat(),
        "s": site_id,
        "f": funding_source,
        "rv": reverses_id,
        "k": source_key,
        "g": grant_id,
        "va": _ts(validated_at),
        "p": [list(p) for p in postings],
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def chain_hash(prev_hash: str, document: bytes) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + document).hexdigest()


def closing_document(closing) -> bytes:
    doc = {
        "v": FORMAT_VERSION,
        "org": closing.org_id,
        "k": closing.kind,
        "p": closing.period,
        "s": closing.start_date.isoformat(),
        "e": closing.end_date.isoformat(),
        "fn": closing.first_number,
        "ln": closing.last_number,
        "c": closing.entry_count,
        "t": closing.totals,
        "pt": closing.period_total,
        "ft": closing.fiscal_year_total,
        "gt": closing.grand_total,
        "at": _ts(closing.closed_at),
        "by": closing.closed_by,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def closing_hash(closing) -> str:
    return chain_hash(closing.prev_hash, closing_document(closing))
