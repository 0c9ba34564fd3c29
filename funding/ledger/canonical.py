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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from funding.db import AnyRow
    from funding.ledger.models import Closing, Seal
    from funding.ledger.seals import KeptSeal

FORMAT_VERSION = 1


def timestamp(value: dt.datetime) -> str:
    """A UTC moment as the canonical documents write it (microseconds, `Z`)."""
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
    postings: Sequence[tuple[Any, ...]],
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
        "va": timestamp(validated_at),
        "p": [list(p) for p in postings],
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def chain_hash(prev_hash: str, document: bytes) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + document).hexdigest()


def closing_document(closing: Closing | AnyRow) -> bytes:
    """Format 1; format 2 adds the hash of the labels frozen at closing (``lb``)."""
    labels = getattr(closing, "labels", None)
    doc = {
        "v": FORMAT_VERSION if labels is None else 2,
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
        "at": timestamp(closing.closed_at),
        "by": closing.closed_by,
    }
    if labels is not None:
        doc["lb"] = hashlib.sha256(labels.encode()).hexdigest()
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def closing_hash(closing: Closing | AnyRow) -> str:
    return chain_hash(closing.prev_hash, closing_document(closing))


def seal_document(seal: Seal | KeptSeal, siren: str, site_slug: str | None) -> bytes:
    """What a seal signs: the organisation by its SIREN and the site by its slug (names that mean
    something outside this database), the chain heads, the append-only tables' counts."""
    doc = {
        "v": FORMAT_VERSION,
        "org": siren,
        "n": seal.seq,
        "k": seal.kind,
        "p": seal.period,
        "s": site_slug,
        "en": seal.entry_number,
        "eh": seal.entry_hash,
        "ch": seal.closing_hash,
        "bs": seal.bar_seq,
        "bh": seal.bar_hash,
        "bc": seal.bar_closing_hash,
        "ba": seal.bar_archive_hash,
        "w": json.loads(seal.counts),
        "at": timestamp(seal.sealed_at),
        "key": seal.key_id,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
