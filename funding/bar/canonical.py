"""Canonical documents of sale lines, closings and archives, and their SHA-256 chain.

Same rules as the ledger's (funding.ledger.canonical): sorted keys, no spaces, UTF-8,
dates in ISO 8601, timestamps in UTC to the microsecond. A line names the line it
cancels by its number (``seq``), which never changes. Treat this as a file format.
"""

from __future__ import annotations

import hashlib
import json

from funding.ledger.canonical import chain_hash, timestamp

FORMAT_VERSION = 1


def _dumps(doc: dict) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def line_document(line, cancels_seq: int | None) -> bytes:
    return _dumps({
        "v": FORMAT_VERSION, "site": line.site_id, "org": line.org_id, "n": line.seq, "d": line.day.isoformat(),
        "at": timestamp(line.recorded_at), "k": line.kind, "m": line.member_id, "t": line.ticket_id, "p": line.product_id,
        "l": line.label, "c": line.category, "u": line.unit_price, "q": line.quantity, "a": line.amount,
        "r": line.vat_rate, "cur": line.currency, "x": cancels_seq, "why": line.reason, "by": line.recorded_by,
    })


def line_hash(line, cancels_seq: int | None) -> str:
    return chain_hash(line.prev_hash, line_document(line, cancels_seq))


def closing_document(closing) -> bytes:
    return _dumps({
        "v": FORMAT_VERSION, "site": closing.site_id, "org": closing.org_id, "k": closing.kind, "p": closing.period,
        "s": closing.start_date.isoformat(), "e": closing.end_date.isoformat(), "fn": closing.first_seq,
        "ln": closing.last_seq, "c": closing.line_count, "cc": closing.cancel_count, "t": closing.totals,
        "m": closing.by_mode, "x": closing.cancellations, "pt": closing.period_total, "ft": closing.fiscal_year_total,
        "gt": closing.grand_total, "ek": closing.entry_key, "at": timestamp(closing.closed_at), "by": closing.closed_by,
    })


def closing_hash(closing) -> str:
    return chain_hash(closing.prev_hash, closing_document(closing))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def archive_hash(archive) -> str:
    """The archive's link in its chain: over its file's checksum and what it covers."""
    return chain_hash(archive.prev_hash, _dumps({
        "v": FORMAT_VERSION, "site": archive.site_id, "org": archive.org_id, "p": archive.period,
        "f": archive.filename, "sha": archive.sha256, "c": archive.line_count, "at": timestamp(archive.created_at),
        "by": archive.created_by,
    }))
