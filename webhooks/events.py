"""The shapes of what Stripe sends us, for the type checker only (nothing here runs per event).

An event's envelope is fixed (``Event``); the object it carries is whatever Stripe's API
version makes of it, read defensively with ``.get``: a ``StripeDict``, as JSON decodes it
(not to be confused with ``funding.payments.models.StripeObject``, the row that mirrors one).
"""

from __future__ import annotations

from typing import Any, TypedDict

StripeDict = dict[str, Any]


class EventData(TypedDict, total=False):
    object: StripeDict
    previous_attributes: StripeDict


class Event(TypedDict):
    """A Stripe event, as delivered to the endpoint or listed by the Events API."""

    id: str
    object: str
    type: str
    created: int
    livemode: bool
    api_version: str | None
    data: EventData
