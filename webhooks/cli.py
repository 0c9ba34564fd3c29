"""``funding stripe sync`` and ``funding webhooks …``: the webhook inbox from the command line.

``funding`` does not import ``webhooks``: the command line's entry point (``funding.cli``)
loads this module, as ``funding.app`` wires the webhook routes.
"""

from __future__ import annotations

import datetime as dt

import click

from funding.clock import PARIS
from funding.commands import CommandError, Context, choice, command, group, out, parse_day, root, stripe_gateway
from funding.payments.models import EventStatus

stripe = group(root, "stripe", help="Stripe")
webhooks = group(root, "webhooks", help="the webhook inbox")


def day_start(day: dt.date) -> dt.datetime:
    """The instant a day begins in Paris: what ``--since 2026-12-07`` means to the association
    (from 23:00 UTC on the 6th in winter), not UTC's midnight, which missed the first hour of the
    day's events, the hour whose bookings the ledger used to refuse (migration 0045)."""
    return dt.datetime.combine(day, dt.time(), PARIS)


@command(stripe, "sync", help="recover missed events (Events API) and unbooked balance transactions", serving=True)
@click.option("--since", required=True, help="YYYY-MM-DD (a day in Paris)")
async def stripe_sync(ctx: Context, since: str) -> None:
    from webhooks.sync import sync

    day = parse_day(since)
    if day is None:
        raise CommandError("--since DATE is required (YYYY-MM-DD; the Events API keeps 30 days)")
    async with stripe_gateway(ctx.settings) as gw:
        report = await sync(ctx.sessions, gw, day_start(day))
    out(f"events not delivered: {report.events_seen} ({report.events_new} new), processed {report.events_processed}; "
        f"balance transactions: {report.transactions_seen} seen, {report.transactions_booked} booked now")


@command(stripe, "resolve", help="settle an unknown request raised to staff, once checked at Stripe", serving=True)
@click.argument("request_id", type=int)
@click.option("--found", "stripe_id", help="the object found at Stripe (its metadata entrelab_ref is the request's)")
@click.option("--absent", is_flag=True, help="nothing at Stripe: create it now, once, under the next key")
async def stripe_resolve(ctx: Context, request_id: int, stripe_id: str | None, absent: bool) -> int:
    from funding.payments.calls import staff_resolve
    from funding.stripe_gateway import GatewayError

    if bool(stripe_id) == absent:
        raise CommandError("say what Stripe holds: --found OBJECT_ID, or --absent")
    async with stripe_gateway(ctx.settings) as gw:
        try:
            outcome = await staff_resolve(ctx.sessions, gw, request_id, stripe_id=stripe_id)
        except (ValueError, GatewayError) as exc:
            raise CommandError(str(exc)) from exc
    out(f"request {request_id}: {outcome}")
    return 0 if outcome == "succeeded" else 1


@command(webhooks, "replay", help="process one event again (fetched from Stripe if we never stored it)", serving=True)
@click.argument("event_id")
async def replay(ctx: Context, event_id: str) -> int:
    from webhooks import sync

    if not event_id.startswith("evt_"):
        raise CommandError(f"not an event id: {event_id} (evt_…)")
    async with stripe_gateway(ctx.settings) as gw:
        status = await sync.replay(ctx.sessions, gw, event_id)
    out(f"{event_id}: {status}")
    return 0 if status == EventStatus.PROCESSED else 1


@command(webhooks, "list", help="recent events; --status dead shows the dead letters")
@click.option("--status", type=choice(EventStatus))
@click.option("--limit", type=int, default=50, show_default=True)
async def list_events(ctx: Context, status: str | None, limit: int) -> None:
    from sqlalchemy import select

    from funding.payments.models import StripeEvent

    async with ctx.sessions() as session:
        query = select(StripeEvent).order_by(StripeEvent.received_at.desc()).limit(limit)
        if status:
            query = query.where(StripeEvent.status == status)
        for event in (await session.scalars(query)).all():
            out(f"{event.id}  {event.type:<40} {event.status:<10} attempts={event.attempts}"
                + (f"  {event.last_error[:120]}" if event.last_error else ""))
