"""Requests the in-process Stripe sandbox refused for an unknown or ill-typed parameter.

Live Stripe would answer them 400: a test during which one happened fails (the autouse
fixture in tests/conftest.py), unless it is about refusal (``@pytest.mark.stripe_refusal``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from stripe_sandbox import validation


@contextmanager
def watch_refusals() -> Iterator[list[dict[str, Any]]]:
    """Yield the list of refusals made inside the block (filled as they happen)."""
    start = len(validation.REFUSED)
    seen: list[dict[str, Any]] = []
    try:
        yield seen
    finally:
        seen.extend(validation.REFUSED[start:])


def describe(refusals: list[dict[str, Any]]) -> str:
    return "; ".join(f"{r['method']} {r['path']}: {r['message']}" for r in refusals)
