"""The sandbox's state: objects by type, ids, sequences, clock offset, JSON persistence.

Objects are stored in their public Stripe shape, with references kept as ids and
sandbox-only bookkeeping under keys that start with ``_`` (never returned).
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, overload

ALPHABET = string.ascii_letters + string.digits

# object type -> id prefix
PREFIXES: dict[str, str] = {
    "customer": "cus",
    "product": "prod",
    "price": "price",
    "payment_method": "pm",
    "mandate": "mandate",
    "payment_intent": "pi",
    "setup_intent": "seti",
    "charge": "ch",
    "refund": "re",
    "dispute": "dp",
    "balance_transaction": "txn",
    "payout": "po",
    "checkout.session": "cs_test",
    "subscription": "sub",
    "invoice": "in",
    "invoiceitem": "ii",
    "invoice_payment": "inpay",
    "billing_portal.session": "bps",
    "tax_rate": "txr",
    "credit_note": "cn",
    "test_helpers.test_clock": "clock",
    "event": "evt",
}
TYPES_BY_PREFIX = {prefix: kind for kind, prefix in PREFIXES.items()}
STATE_VERSION = 1


def type_of_id(ident: str) -> str | None:
    """The object type an id belongs to, from its prefix."""
    if ident.startswith("cs_test_"):
        return "checkout.session"
    return TYPES_BY_PREFIX.get(ident.split("_", 1)[0])


@overload
def public(obj: dict[str, Any]) -> dict[str, Any]: ...
@overload
def public(obj: list[Any]) -> list[Any]: ...
def public(obj: Any) -> Any:
    """A deep copy without the sandbox's private keys (at any depth); lists of objects too."""
    if isinstance(obj, dict):
        return {k: public(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [public(v) for v in obj]
    return obj


class BrokenReference(LookupError):
    """A stored object refers to one the store does not hold: a sandbox bug or a hand-edited state file.

    Not a client error: an API call that meets one is answered as Stripe's 500 (``api._execute``).
    """


class Store:
    def __init__(self, data: dict[str, Any] | None = None):
        self.data: dict[str, Any] = data or {
            "version": STATE_VERSION,
            "clock_offset": 0,
            "seq": 0,
            "invoice_number": 0,
            "objects": {},
            "idempotency": {},
        }
        for kind in PREFIXES:
            self.data["objects"].setdefault(kind, {})
        # The test clock that requests and scheduled work run on now (None: the global clock);
        # objects stored meanwhile belong to it (``_clock``). Never persisted.
        self.clock: str | None = None

    # ids and sequences
    def next_seq(self) -> int:
        self.data["seq"] += 1
        return self.data["seq"]

    def new_id(self, kind: str, length: int = 24) -> str:
        prefix = PREFIXES[kind]
        if kind == "checkout.session":
            length = 58
        while True:
            ident = f"{prefix}_" + "".join(secrets.choice(ALPHABET) for _ in range(length))
            if ident not in self.data["objects"][kind]:
                return ident

    def sub_id(self, prefix: str) -> str:
        """Ids of embedded objects (line items, subscription items): unique, not indexed."""
        return f"{prefix}_{self.next_seq():06d}" + "".join(secrets.choice(ALPHABET) for _ in range(14))

    def next_invoice_number(self) -> int:
        self.data["invoice_number"] += 1
        return self.data["invoice_number"]

    # objects
    def put(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj.setdefault("_seq", self.next_seq())
        if self.clock is not None:
            obj.setdefault("_clock", self.clock)
        self.data["objects"][kind][obj["id"]] = obj
        return obj

    def get(self, kind: str, ident: str) -> dict[str, Any] | None:
        return self.data["objects"][kind].get(ident)

    def ref(self, kind: str, ident: str) -> dict[str, Any]:
        """The object that a reference kept in the state points to (``pi["payment_method"]``...).

        The sandbox only stores ids it has checked, so the object is there; ids that come from
        a request go through ``api.get_or_404`` (or ``find_customer``...) instead.
        """
        obj = self.get(kind, ident)
        if obj is None:
            raise BrokenReference(f"sandbox state: {kind} {ident!r} is referenced but not stored")
        return obj

    def find(self, ident: str) -> tuple[str, dict[str, Any]] | None:
        kind = type_of_id(ident)
        if kind is None:
            return None
        obj = self.get(kind, ident)
        return (kind, obj) if obj is not None else None

    def all(self, kind: str) -> Iterator[dict[str, Any]]:
        return iter(list(self.data["objects"][kind].values()))

    def scoped(self, kind: str) -> Iterator[dict[str, Any]]:
        """The objects of the clock in use: a test clock's own, or (global clock) those of none."""
        return iter([o for o in self.data["objects"][kind].values() if o.get("_clock") == self.clock])

    @property
    def idempotency(self) -> dict[str, Any]:
        return self.data["idempotency"]

    # clock
    @property
    def clock_offset(self) -> int:
        return self.data["clock_offset"]

    @clock_offset.setter
    def clock_offset(self, value: int) -> None:
        self.data["clock_offset"] = value

    # persistence
    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self.data)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.data, handle, separators=(",", ":"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> Store:
        if not path.exists():
            return cls()
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"{path}: sandbox state version {data.get('version')!r}, expected {STATE_VERSION}")
        return cls(data)
