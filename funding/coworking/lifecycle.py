"""What Stripe's subscriptions and invoices mean for members: state, access, books, emails.

Everything here runs inside the caller's transaction (a webhook's apply, a return page)
from objects already fetched from Stripe, and is idempotent:

- a subscription or invoice row only takes a state newer than the one it holds
  (``version``), and never leaves a final state (canceled, incomplete_expired; paid, void);
- the sale entry of an invoice (``[VT] D 411 / C 706, 7561, 7562 / C 4457x``) is keyed by
  the invoice id, its settlement (``[ST] D 5115 / D 627 / C 411``) by the balance
  transaction id; the sale is always numbered before its settlement;
- every email has a dedupe key (per invoice and payment attempt).

Access rule: active or trialing → access; past_due → access for a grace period (setting
``COWORKING_GRACE_DAYS``, 7 days by default) counted from when we saw it fall past due;
anything else → no access.

SEPA Direct Debit: a debit is ``processing`` for about 5 business days before the bank answers.

- A new member whose first debit is processing: the Checkout completed (the mandate is signed)
  and Stripe leaves the subscription ``incomplete``, its first invoice open. They have access
  from the Checkout's completion, as during a trial ("processing"): a member should not wait a
  week at the door for a bank. If the debit fails late, Stripe ends the subscription
  (``incomplete_expired``, the invoice void: its sale is reversed), access ends and the member
  is told (``coworking/first_debit_failed``). An ``incomplete`` subscription whose Checkout did
  not complete (a card that needs the customer) gives no access.
- A renewal debit processing: the subscription stays ``active`` (Stripe leaves the invoice open
  while it processes), so access goes on; a late failure makes it ``past_due``: the grace period.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import and_, bindparam, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from funding.auth.models import User
from funding.clock import local_day
from funding.coworking.members import ensure_aux_account, member_from_metadata
from funding.coworking.models import (
    LIVE_STATUSES,
    RUNNING,
    Checkout,
    CheckoutStatus,
    Invoice,
    InvoiceStatus,
    Member,
    Plan,
    PlanPrice,
    Subscription,
    SubscriptionStatus,
)
from funding.coworking.plans import plan_for_price
from funding.db import dialect_insert, dialect_of, digits, get_held, insert_ignore, must_get, per_transaction, rowcount, utcnow
from funding.ledger.chart import vat_account
from funding.ledger.models import Entry, FundingSource
from funding.ledger.service import EntryDraft, Line, post, reversal_by_key
from funding.mail.compose import render
from funding.mail.service import enqueue
from funding.money import proportional_shares
from funding.orgs.models import Site
from funding.payments import prenotice, purposes
from funding.payments.books import dated_for_open_period
from funding.payments.tax_rates import rates_by_stripe_id, stated_tax
from funding.stripe_gateway import stripe_id

DEFAULT_GRACE_DAYS = 7
FINAL_SUBSCRIPTION = (SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED)
FINAL_INVOICE = (InvoiceStatus.PAID, InvoiceStatus.VOID)
SUSPENSE = "467"


def from_unix(value) -> dt.datetime | None:
    if value in (None, "", 0):
        return None
    return dt.datetime.fromtimestamp(int(value), dt.UTC).replace(tzinfo=None)



# --- access ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    granted: bool
    reason: str  # active, trialing, grace, past_due, unpaid, canceled, none…
    until: dt.datetime | None = None  # end of the grace period, when in it


def access_of(sub: Subscription | None, *, now: dt.datetime | None = None, grace_days: int = DEFAULT_GRACE_DAYS) -> Access:
    """The access rule, for one subscription. An ``incomplete`` one reaches here only when its
    Checkout completed (``current_subscription`` and ``shown_subscriptions`` pick no other): its
    first debit is processing, and the member has access meanwhile."""
    if sub is None:
        return Access(False, "none")
    return access_for(sub.status, sub.past_due_since, now=now, grace_days=grace_days)


def access_for(status: str, past_due_since: dt.datetime | None, *, now: dt.datetime | None = None,
               grace_days: int = DEFAULT_GRACE_DAYS) -> Access:
    """:func:`access_of` from the two columns it reads (a list reads them, not whole rows)."""
    if status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING):
        return Access(True, status)
    if status == SubscriptionStatus.INCOMPLETE:
        return Access(True, "processing")
    if status == SubscriptionStatus.PAST_DUE:
        now = now or utcnow()
        until = (past_due_since or now) + dt.timedelta(days=grace_days)
        if now < until:
            return Access(True, "grace", until)
        return Access(False, "past_due", until)
    return Access(False, status)


def first_debit_processing():
    """An ``incomplete`` subscription whose Checkout completed: its first invoice is being paid by
    a bank debit that is still processing (a card would have made it active or failed on the page)."""
    checkout_done = select(Checkout.id).where(Checkout.stripe_subscription_id == Subscription.stripe_subscription_id,
                                              Checkout.status == CheckoutStatus.COMPLETE).exists()
    return and_(Subscription.status == SubscriptionStatus.INCOMPLETE, checkout_done)


def shown_subscriptions():
    """The subscriptions that count for a member: all but the ones that never started (an
    ``incomplete`` one counts while its first debit is processing)."""
    return or_(Subscription.status.not_in((SubscriptionStatus.INCOMPLETE, SubscriptionStatus.INCOMPLETE_EXPIRED)),
               first_debit_processing())


async def current_subscription(session: AsyncSession, member_id: int, *, kind: str = "workspace") -> Subscription | None:
    """The member's subscription of this kind that matters now: a live one (the newest; one whose
    first debit is processing counts as live), else the last one."""
    order = case((or_(Subscription.status.in_(LIVE_STATUSES), Subscription.status == SubscriptionStatus.INCOMPLETE), 0), else_=1)
    return await session.scalar(
        select(Subscription).where(Subscription.member_id == member_id, Subscription.kind == kind, shown_subscriptions())
        .order_by(order, Subscription.started_at.desc(), Subscription.id.desc()).limit(1))


async def pass_day_members(session: AsyncSession, member_ids, day: dt.date) -> set[int]:
    """Members among ``member_ids`` who have a pass day counted on ``day``."""
    from funding.coworking.models import PassDay

    ids = list(member_ids)
    if not ids:
        return set()
    return set((await session.scalars(select(PassDay.member_id).where(PassDay.member_id.in_(ids),
                                                                       PassDay.day == day))).all())


def with_pass(access: Access, on_pass_today: bool) -> Access:
    """A day counted on a pass opens the spaces for that day, whatever the subscription says."""
    return Access(True, "pass") if on_pass_today and not access.granted else access


async def member_access(session: AsyncSession, member_id: int, *, now: dt.datetime | None = None,
                        grace_days: int = DEFAULT_GRACE_DAYS) -> Access:
    access = access_of(await current_subscription(session, member_id), now=now, grace_days=grace_days)
    if access.granted:
        return access
    today = local_day(now or utcnow())
    return with_pass(access, member_id in await pass_day_members(session, [member_id], today))


async def fetched_version(session: AsyncSession, model, stripe_id: str) -> int:
    """The version of an object we fetched (or got back from our own call) just now: the
    current state, so newer than what we hold, whatever the clocks (Stripe's test clocks and
    the sandbox's run ahead of ours). Strictly newer, by a second: versions are whole seconds,
    and an event's handler may have fetched the object a moment before our call, in the same
    second as its event; it applies after us with that version, and must lose the tie (Stripe
    delivers late, twice, concurrently)."""
    column = model.stripe_subscription_id if model is Subscription else model.stripe_invoice_id
    held = await session.scalar(select(model.version).where(column == stripe_id))
    return max(int(time.time()), int(held or 0)) + 1


# --- subscriptions -----------------------------------------------------------------------


async def apply_subscription(session: AsyncSession, sub: dict, version: int) -> Subscription | None:
    """Mirror a Stripe subscription (as fetched, or from an event) into its row, if newer.

    Returns the row, or None for a subscription that is not a member's.
    """
    meta = sub.get("metadata") or {}
    customer = stripe_id(sub.get("customer"))
    member = await member_from_metadata(session, meta, customer)
    if member is None:
        return None
    items = (sub.get("items") or {}).get("data") or []
    item = items[0] if items else {}
    price_id = stripe_id(item.get("price"))
    plan = await plan_for_price(session, price_id)
    site_id = plan.site_id if plan else (int(meta["site_id"]) if digits(str(meta.get("site_id", ""))) else member.site_id)
    status = sub["status"]
    seen_at = from_unix(version) or utcnow()
    values = {
        "plan_id": plan.id if plan else None,
        "kind": plan.kind if plan else (meta.get("kind") or "workspace"),
        "stripe_price_id": price_id,
        "status": status,
        "current_period_start": from_unix(item.get("current_period_start")),
        "current_period_end": from_unix(item.get("current_period_end")),
        "cancel_at_period_end": bool(sub.get("cancel_at_period_end")),
        "cancel_at": from_unix(sub.get("cancel_at")),
        "canceled_at": from_unix(sub.get("canceled_at")),
        "ended_at": from_unix(sub.get("ended_at")),
        "version": int(version),
        "updated_at": utcnow(),
    }
    inserted = await insert_ignore(session, Subscription, {
        **values, "member_id": member.id, "site_id": site_id, "stripe_subscription_id": sub["id"],
        "started_at": from_unix(sub.get("start_date") or sub.get("created")) or seen_at,
        "past_due_since": seen_at if status == SubscriptionStatus.PAST_DUE else None, "created_at": utcnow(),
    }, ["stripe_subscription_id"])
    before = None
    if inserted is None:
        before = (await session.execute(
            select(Subscription.stripe_price_id, Subscription.plan_id, Subscription.cancel_at_period_end,
                   Subscription.canceled_at, Subscription.status)
            .where(Subscription.stripe_subscription_id == sub["id"]).with_for_update())).one()
        values["past_due_since"] = case((Subscription.status == SubscriptionStatus.PAST_DUE, func.coalesce(Subscription.past_due_since, seen_at)),
                                        else_=seen_at) if status == SubscriptionStatus.PAST_DUE else None
        moved = await session.execute(
            update(Subscription).where(
                Subscription.stripe_subscription_id == sub["id"], Subscription.version <= int(version),
                or_(Subscription.status.not_in(FINAL_SUBSCRIPTION), Subscription.status == status),
            ).values(**values).execution_options(synchronize_session=False))
        if rowcount(moved) != 1:
            before = None  # an older word than ours: nothing changed
    # Inserted or already there: the row exists either way.
    row = (await session.scalars(select(Subscription).where(Subscription.stripe_subscription_id == sub["id"])
                                 .execution_options(populate_existing=True))).one()
    await _subscription_emails(session, row, member)
    if before is not None:
        await _change_emails(session, row, member, before, int(version))
    return row


async def _change_emails(session: AsyncSession, row: Subscription, member: Member, before, version: int) -> None:
    """What the member changed (or Stripe's portal did) since the row we held: a plan change, a
    cancellation at the period's end, its undo, each told once. The row was locked before the
    update, so a second delivery of the same news finds nothing changed; the keys come from
    Stripe's object (the price, the cancellation's ``canceled_at``) and the event's time."""
    if row.status not in RUNNING or before.status not in RUNNING:
        return
    user = await must_get(session, User, member.user_id)
    site = await must_get(session, Site, row.site_id)
    plan = await session.get(Plan, row.plan_id) if row.plan_id else None
    about = {"name": user.name, "plan": plan.name if plan else None, "site": site.name}  # no plan: "abonnement"
    key = f"coworking:{row.stripe_subscription_id}"
    if before.stripe_price_id and row.stripe_price_id and before.stripe_price_id != row.stripe_price_id:
        old = await session.get(Plan, before.plan_id) if before.plan_id else None
        await enqueue(session, to=user.email, user_id=user.id, org_id=member.org_id,
                      dedupe_key=f"{key}:plan:{row.stripe_price_id}:{version}",
                      **render("coworking/plan_changed", user.locale, **about, old=old.name if old else None))
    if row.cancel_at_period_end and not before.cancel_at_period_end:
        end = local_day(row.cancel_at or row.current_period_end or utcnow())
        stamp = int((row.canceled_at or from_unix(version) or utcnow()).replace(tzinfo=dt.UTC).timestamp())
        await enqueue(session, to=user.email, user_id=user.id, org_id=member.org_id, dedupe_key=f"{key}:cancel:{stamp}",
                      **render("coworking/cancel_scheduled", user.locale, **about, end=end))
    elif before.cancel_at_period_end and not row.cancel_at_period_end:
        stamp = int((before.canceled_at or from_unix(version) or utcnow()).replace(tzinfo=dt.UTC).timestamp())
        await enqueue(session, to=user.email, user_id=user.id, org_id=member.org_id, dedupe_key=f"{key}:resume:{stamp}",
                      **render("coworking/cancel_undone", user.locale, **about))


async def _subscription_emails(session: AsyncSession, row: Subscription, member: Member) -> None:
    user = await must_get(session, User, member.user_id)
    plan = await session.get(Plan, row.plan_id) if row.plan_id else None
    site = await must_get(session, Site, row.site_id)
    about = {"name": user.name, "plan": plan.name if plan else None, "site": site.name}  # no plan: "abonnement"
    if row.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING):
        await enqueue(session, to=user.email, user_id=user.id, org_id=member.org_id, dedupe_key=f"coworking:{row.stripe_subscription_id}:welcome",
                      **render("coworking/welcome", user.locale, **about))
    elif row.status == SubscriptionStatus.UNPAID:
        await enqueue(session, to=user.email, user_id=user.id, org_id=member.org_id, dedupe_key=f"coworking:{row.stripe_subscription_id}:unpaid",
                      **render("coworking/suspended", user.locale, **about))
    elif row.status == SubscriptionStatus.CANCELED:
        await enqueue(session, to=user.email, user_id=user.id, org_id=member.org_id, dedupe_key=f"coworking:{row.stripe_subscription_id}:ended",
                      **render("coworking/ended", user.locale, **about, ended=local_day(row.ended_at or utcnow())))
    elif row.status == SubscriptionStatus.INCOMPLETE_EXPIRED and await session.scalar(select(Checkout.id).where(
            Checkout.stripe_subscription_id == row.stripe_subscription_id, Checkout.status == CheckoutStatus.COMPLETE).limit(1)):
        # The Checkout completed, yet the subscription never started: its first debit failed (access ends now).
        await enqueue(session, to=user.email, user_id=user.id, org_id=member.org_id,
                      dedupe_key=f"coworking:{row.stripe_subscription_id}:first-debit-failed",
                      **render("coworking/first_debit_failed", user.locale, **about))


# --- invoices ----------------------------------------------------------------------------


def _line_price(line: dict) -> str | None:
    pricing = line.get("pricing") or {}
    details = pricing.get("price_details") or {}
    price = details.get("price") or line.get("price")
    return stripe_id(price)


async def booked_lines(session: AsyncSession, invoice: dict) -> list[dict]:
    """How each line of a finalised invoice is booked: base and VAT on which accounts.

    Where Stripe taxed the line (our Tax Rates), its figures are the ones booked: base =
    the line's taxable amount, VAT = its taxes, at the rate our Tax Rate stands for; so the
    receivable is, to the cent, what Stripe asks the member. An untaxed line (an invoice from
    before the Tax Rates) is split back at the plan's rate. A line another domain already
    booked (metadata ``entrelab_booked``: a bar tab) stays out of the sale entry, but counts
    in a write-off; a line naming ``account`` and ``vat_rate`` (per mille) in its metadata
    is booked there; an unknown line goes to the suspense account for an accountant to sort.
    """
    known_rates = await rates_by_stripe_id(session)
    whole = (invoice.get("metadata") or {}).get("entrelab_booked")  # a pass's invoice: its sale is booked from its payment
    out = []
    for line in (invoice.get("lines") or {}).get("data") or []:
        meta = {**(line.get("metadata") or {}), **({"entrelab_booked": "1"} if whole else {})}
        amount = int(line.get("amount") or 0)
        price_id = _line_price(line)
        plan_id: int | None = None
        account: str | None = SUSPENSE  # None: booked by another domain already
        rate = 0
        if meta.get("entrelab_booked"):
            account = None
            rate = int(meta["vat_rate"]) if digits(str(meta.get("vat_rate", ""))) else 0
        elif meta.get("account") and digits(str(meta.get("vat_rate", ""))):
            account, rate = str(meta["account"]), int(meta["vat_rate"])
        elif price_id:
            prices = per_transaction(session, "plan_prices")  # a batch of invoices names a few prices
            if price_id not in prices:
                prices[price_id] = (await session.execute(select(PlanPrice.plan_id, PlanPrice.vat_rate, Plan.account)
                                                          .join(Plan, Plan.id == PlanPrice.plan_id)
                                                          .where(PlanPrice.stripe_price_id == price_id))).first()
            row = prices[price_id]
            if row is not None:
                plan_id, rate, account = row.plan_id, row.vat_rate, row.account
        taxed = stated_tax(line, known_rates)
        if taxed is not None:
            base, vat, stated = taxed
            rate = rate if stated is None else stated
        else:
            base, vat = purposes.split_vat(amount, rate) if rate else (amount, 0)
        period = line.get("period") or {}
        parent = line.get("parent") or {}
        details = parent.get("subscription_item_details") or parent.get("invoice_item_details") or {}
        out.append({"id": line.get("id"), "description": (line.get("description") or "")[:200], "amount": amount, "base": base, "vat": vat,
                    "vat_rate": rate, "account": account, "plan_id": plan_id, "proration": bool(details.get("proration")),
                    "period_start": period.get("start"), "period_end": period.get("end")})
    return out


def _invoice_values(invoice: dict, version: int) -> dict:
    transitions = invoice.get("status_transitions") or {}
    issued = from_unix(transitions.get("finalized_at") or invoice.get("effective_at") or invoice.get("created")) or utcnow()
    return {
        "number": invoice.get("number"),
        "status": invoice["status"],
        "billing_reason": invoice.get("billing_reason"),
        "currency": (invoice.get("currency") or "eur").upper(),
        "total": int(invoice.get("total") or 0),
        "amount_due": int(invoice.get("amount_due") or 0),
        "amount_paid": int(invoice.get("amount_paid") or 0),
        "amount_remaining": int(invoice.get("amount_remaining") or 0),
        "attempt_count": int(invoice.get("attempt_count") or 0),
        "hosted_invoice_url": invoice.get("hosted_invoice_url"),
        "invoice_pdf": invoice.get("invoice_pdf"),
        "issued_at": issued,
        "paid_at": from_unix(transitions.get("paid_at")),
        "version": int(version),
        "updated_at": utcnow(),
    }


def subscription_of(invoice: dict) -> tuple[str | None, dict]:
    details = ((invoice.get("parent") or {}).get("subscription_details")) or {}
    return stripe_id(details.get("subscription")), details.get("metadata") or {}


async def apply_invoice(session: AsyncSession, invoice: dict, version: int) -> Invoice | None:
    """Mirror a finalised invoice of a member into its row, if newer. Drafts are not kept
    (no number, no links, lines may still change)."""
    if invoice.get("status") in (None, "draft") or str(invoice.get("id", "")).startswith("upcoming"):
        return None
    sub_id, sub_meta = subscription_of(invoice)
    meta = {**sub_meta, **(invoice.get("metadata") or {})}
    member = await member_from_metadata(session, meta, stripe_id(invoice.get("customer")))
    if member is None:
        return None
    values = _invoice_values(invoice, version)
    lines = json.dumps(await booked_lines(session, invoice), sort_keys=True)
    # The row comes back from the statement that writes it (RETURNING): no read after the write.
    refreshed = {"populate_existing": True}
    written = per_transaction(session, "invoices_written")
    inserted = await session.scalar(_insert_invoice(dialect_of(session)), {
        **values, "member_id": member.id, "stripe_invoice_id": invoice["id"], "stripe_subscription_id": sub_id, "lines": lines,
        "site_of_subscription": sub_id,
        "site_otherwise": int(meta["site_id"]) if digits(str(meta.get("site_id", ""))) else member.site_id,
    }, execution_options=refreshed)
    if inserted is not None:
        written[invoice["id"]] = inserted
        return inserted
    updated = await session.scalar(
        update(Invoice).where(
            Invoice.stripe_invoice_id == invoice["id"], Invoice.version <= int(version),
            or_(Invoice.status.not_in(FINAL_INVOICE), Invoice.status == invoice["status"]),
        ).values(**values).returning(Invoice), execution_options={**refreshed, "synchronize_session": False})
    if updated is not None:
        written[invoice["id"]] = updated
        return updated
    return await session.scalar(select(Invoice).where(Invoice.stripe_invoice_id == invoice["id"]),  # ours is older
                                execution_options=refreshed)


_INSERTED_COLUMNS = ("number", "status", "billing_reason", "currency", "total", "amount_due", "amount_paid", "amount_remaining",
                     "attempt_count", "hosted_invoice_url", "invoice_pdf", "issued_at", "paid_at", "version", "updated_at",
                     "member_id", "stripe_invoice_id", "stripe_subscription_id", "lines")


@functools.cache
def _insert_invoice(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING the row, built once (values as parameters: building
    and keying a statement of twenty values cost as much as sending it). The site is the subscription's,
    else the metadata's, else the member's, read by this statement (not one more round trip before it)."""
    table = Invoice.__table__
    site = func.coalesce(select(Subscription.site_id).where(
        Subscription.stripe_subscription_id == bindparam("site_of_subscription")).scalar_subquery(), bindparam("site_otherwise"))
    written = (dialect_insert(dialect)(table).values(**{c: bindparam(c) for c in _INSERTED_COLUMNS}, site_id=site)
               .on_conflict_do_nothing(index_elements=["stripe_invoice_id"]).returning(*table.c))
    return select(Invoice).from_statement(written)


async def invoice_row(session: AsyncSession, stripe_invoice_id: str) -> Invoice | None:
    """The mirror of an invoice: the row this transaction wrote (and holds locked) if it wrote one, as
    that statement returned it, else read."""
    written = per_transaction(session, "invoices_written").get(stripe_invoice_id)
    if written is not None:
        return cast(Invoice, written)
    return await session.scalar(select(Invoice).where(Invoice.stripe_invoice_id == stripe_invoice_id))


async def member_account(session: AsyncSession, member: Member, org_id: int) -> tuple[str, str]:
    """The member as the books name them (the company, else the person) and their 411 auxiliary
    account in ``org_id``'s books (made on first use)."""
    user = await must_get(session, User, member.user_id)
    who = member.company_name or user.name
    return who, await ensure_aux_account(session, org_id, member, who)


async def sale_draft(session: AsyncSession, row: Invoice) -> EntryDraft | None:
    """[VT] D 411 (the member's account) · C revenue per account · C VAT per rate, for an invoice."""
    lines = json.loads(row.lines or "[]")
    credits: dict[str, int] = defaultdict(int)
    for line in lines:
        if line["account"] is None:
            continue
        credits[line["account"]] += line["base"]
        if line["vat"]:
            credits[vat_account(line["vat_rate"])] += line["vat"]
    receivable = sum(credits.values())
    member = await must_get(session, Member, row.member_id)
    site = await must_get(session, Site, row.site_id)
    who, code = await member_account(session, member, site.org_id)
    postings = [Line("411", receivable, row.currency, aux=code, label=who[:200])] if receivable else []
    postings += [Line(account, -amount, row.currency) for account, amount in sorted(credits.items()) if amount]
    if len(postings) < 2:
        return None
    day = local_day(row.issued_at)
    number = row.number or row.stripe_invoice_id
    return EntryDraft(
        org_id=site.org_id, site_id=site.id, journal="VT", entry_date=day, piece_date=day,
        label=f"Facture {number} — {who}"[:200], piece_ref=number[:100], funding_source=FundingSource.SELF,
        lines=postings, source_key=sale_key(row.stripe_invoice_id),
    )


def sale_key(invoice_id: str) -> str:
    return f"stripe:{invoice_id}"


BOOKED = (InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE, InvoiceStatus.VOID)


def _transition_day(invoice: dict | None, name: str) -> dt.date:
    moment = from_unix(((invoice or {}).get("status_transitions") or {}).get(name))
    return local_day(moment or utcnow())


_SALE_AND_WRITEOFF = select(Entry.source_key).where(Entry.org_id == bindparam("org_id"),
                                                    Entry.source_key.in_((bindparam("sale"), bindparam("writeoff"))))


async def accrual_drafts(session: AsyncSession, row: Invoice, invoice: dict | None = None) -> list[EntryDraft]:
    """The invoice in the books as it stands now (accrual: ACCOUNTING.md §9), whatever order
    the events came in. Every finalised invoice has its sale, at its date; then

    - void: the sale is reversed (and a write-off, if there was one), at the void date;
    - uncollectible: what remains due is written off: [OD] D 654 · D 4457x (the VAT on it is
      recovered) · C 411, at the date it was marked;
    - paid after a write-off: the write-off is reversed, so the payment settles a receivable.
    Each entry is keyed by the invoice, so a replay posts nothing twice."""
    if row.status not in BOOKED:
        return []
    key = sale_key(row.stripe_invoice_id)
    number = row.number or row.stripe_invoice_id
    site = await get_held(session, Site, row.site_id)
    if site is None:
        return []
    org_id = site.org_id
    if row.status == InvoiceStatus.VOID:
        await post_sale(session, row)  # the reversal refers to it: it must be in the books first
        day = _transition_day(invoice, "voided_at")
        drafts = [await reversal_by_key(session, org_id, key, key=f"{key}:void", label=f"Facture {number} annulée", entry_date=day),
                  await reversal_by_key(session, org_id, f"{key}:uncollectible", key=f"{key}:void-writeoff",
                                        label=f"Facture {number} annulée : perte contrepassée", entry_date=day)]
        return [d for d in drafts if d is not None]
    # A sale already in the books is not drafted again (every later event of the invoice comes here);
    # one read says whether the sale and a write-off are in the books.
    present = set((await session.scalars(_SALE_AND_WRITEOFF, {"org_id": org_id, "sale": key,
                                                               "writeoff": f"{key}:uncollectible"})).all())
    drafts = [] if key in present else [await sale_draft(session, row)]
    if row.status == InvoiceStatus.UNCOLLECTIBLE:
        drafts.append(await writeoff_draft(session, row, _transition_day(invoice, "marked_uncollectible_at")))
    elif row.status == InvoiceStatus.PAID and f"{key}:uncollectible" in present:  # paid after a write-off
        drafts.append(await reversal_by_key(session, org_id, f"{key}:uncollectible", key=f"{key}:recovered",
                                            label=f"Facture {number} réglée après passage en perte",
                                            entry_date=_transition_day(invoice, "paid_at")))
    return [d for d in drafts if d is not None]


async def writeoff_draft(session: AsyncSession, row: Invoice, day: dt.date) -> EntryDraft | None:
    """[OD] D 654 · D 4457x · C 411 for what the member still owes on an uncollectible invoice,
    spread over the invoice's VAT rates in proportion to its lines."""
    remaining = int(row.amount_remaining or 0)
    lines = json.loads(row.lines or "[]")
    gross: dict[int, int] = defaultdict(int)
    for line in lines:
        if line["base"] + line["vat"] > 0:
            gross[int(line["vat_rate"])] += line["base"] + line["vat"]
    if remaining <= 0 or not gross:
        return None
    member = await must_get(session, Member, row.member_id)
    site = await must_get(session, Site, row.site_id)
    who, code = await member_account(session, member, site.org_id)
    loss = 0
    vat_lines = []
    for rate, share in sorted(proportional_shares(remaining, gross).items(), key=lambda item: vat_account(item[0])):
        vat = (share * rate * 2 + 1000 + rate) // (2 * (1000 + rate)) if rate else 0  # the VAT a gross share holds, half up
        loss += share - vat
        if vat:
            vat_lines.append(Line(vat_account(rate), vat, row.currency, label="TVA sur créance irrécouvrable"))
    number = row.number or row.stripe_invoice_id
    postings = [Line("654", loss, row.currency, label=who[:200]), *vat_lines, Line("411", -remaining, row.currency, aux=code, label=who[:200])]
    return EntryDraft(org_id=site.org_id, site_id=site.id, journal="OD", entry_date=day, piece_date=day,
                      label=f"Facture {number} irrécouvrable — {who}"[:200], piece_ref=number[:100],
                      funding_source=FundingSource.SELF, lines=[p for p in postings if p.amount],
                      source_key=f"{sale_key(row.stripe_invoice_id)}:uncollectible")


async def _in_books(session: AsyncSession, org_id: int, source_key: str) -> bool:
    return await session.scalar(select(Entry.id).where(Entry.org_id == org_id, Entry.source_key == source_key)) is not None


async def post_sale(session: AsyncSession, row: Invoice) -> None:
    """Post the invoice's sale entry now if it is not in the books (so it comes before its settlement)."""
    site = await must_get(session, Site, row.site_id)
    if await _in_books(session, site.org_id, sale_key(row.stripe_invoice_id)):
        return  # posted already (the unique source key would refuse it anyway)
    draft = await sale_draft(session, row)
    if draft is not None:
        await post(session, await dated_for_open_period(session, [draft]))


async def settle_invoice_charge(session: AsyncSession, metadata: dict, amount: int, currency: str) -> purposes.Allocation | None:
    """The ``invoice`` purpose: a charge (or refund) of a member's invoice settles the member's
    receivable: [ST] D 5115 net · D 627 fee · C 411 (the member's account)."""
    member = await member_from_metadata(session, metadata, metadata.get("customer"))
    if member is None:
        return None
    fetched = metadata.get("invoice_object")
    if isinstance(fetched, dict) and not (fetched.get("lines") or {}).get("has_more"):
        row = await apply_invoice(session, fetched, await fetched_version(session, Invoice, fetched["id"]))  # events may lag
    else:
        row = await invoice_row(session, str(metadata.get("invoice", "")))
    before: list[EntryDraft] = []
    if row is not None and amount > 0 and row.status in BOOKED:
        # The sale (and a paid invoice's reversed write-off) numbered before the settlement, whatever
        # the events' order: posted in the same batch, just before it (Allocation.before).
        before = await accrual_drafts(session, row, fetched if isinstance(fetched, dict) else None)
    if row is not None:
        site_id = row.site_id
    elif digits(str(metadata.get("site_id", ""))):
        site_id = int(metadata["site_id"])
    else:
        site_id = member.site_id
    site = await get_held(session, Site, site_id)
    if site is None:
        return None
    who, code = await member_account(session, member, site.org_id)
    number = (row.number if row is not None else None) or metadata.get("invoice") or "?"
    return purposes.Allocation(org_id=site.org_id, site_id=site.id, funding_source=FundingSource.SELF,
                               label=f"Règlement facture {number} — {who}"[:200],
                               lines=[Line("411", -amount, currency, aux=code, label=who[:200])], before=before)


async def invoice_effects(session: AsyncSession, event_type: str, event_invoice: dict, row: Invoice,
                          current: dict | None = None, *, debit: dict | None = None) -> list[EntryDraft]:
    """Emails and the entries that an invoice event calls for, once each (``current``: the
    invoice as fetched now, for the dates of its transitions; ``debit``: the SEPA debit paying
    it, still processing — funding.coworking.mandates.debit_of_invoice)."""
    member = await must_get(session, Member, row.member_id)
    user = await must_get(session, User, member.user_id)
    number = row.number or row.stripe_invoice_id
    attempt = int(event_invoice.get("attempt_count") or row.attempt_count or 0)
    about = {"name": user.name, "number": number, "due": row.amount_remaining or row.amount_due, "currency": row.currency,
             "link": row.hosted_invoice_url or ""}
    if event_type == "invoice.payment_failed" and row.status == InvoiceStatus.OPEN:
        retry = from_unix(event_invoice.get("next_payment_attempt"))
        await enqueue(session, to=user.email, user_id=user.id, org_id=member.org_id,
                      dedupe_key=f"coworking:{row.stripe_invoice_id}:failed:{attempt}",
                      **render("coworking/payment_failed", user.locale, **about, retry=local_day(retry) if retry else None))
    if (debit is not None and row.status == InvoiceStatus.OPEN and event_type != "invoice.payment_failed"
            and not await prenotice.announced(session, current or event_invoice)):
        # SEPA's pre-notification: the amount and the day of the debit, before the bank takes it (once per debit),
        # unless invoice.upcoming announced this renewal days before (funding.payments.prenotice).
        day = dt.date.fromisoformat(debit["date"]) if debit.get("date") else None
        await enqueue(session, to=user.email, user_id=user.id, org_id=member.org_id,
                      dedupe_key=f"coworking:{row.stripe_invoice_id}:debit:{debit['payment_intent']}",
                      **render("coworking/debit_notice", user.locale, name=user.name, number=number, amount=debit["amount"],
                               currency=debit["currency"], day=day, link=row.hosted_invoice_url or ""))
    if event_type == "invoice.payment_action_required" and row.status == InvoiceStatus.OPEN:
        await enqueue(session, to=user.email, user_id=user.id, org_id=member.org_id,
                      dedupe_key=f"coworking:{row.stripe_invoice_id}:action:{attempt}",
                      **render("coworking/payment_action", user.locale, **about))
    return await accrual_drafts(session, row, current)


async def member_invoices(session: AsyncSession, member_id: int, *, limit: int = 50) -> list[Invoice]:
    return list((await session.scalars(select(Invoice).where(Invoice.member_id == member_id)
                                       .order_by(Invoice.issued_at.desc(), Invoice.id.desc()).limit(limit))).all())


def overdue_filter():
    """Invoices a member owes: open after a failed attempt, or given up on (uncollectible)."""
    return or_(and_(Invoice.status == InvoiceStatus.OPEN, Invoice.attempt_count > 0), Invoice.status == InvoiceStatus.UNCOLLECTIBLE)


async def overdue_amount(session: AsyncSession, member_id: int) -> int:
    return int(await session.scalar(select(func.coalesce(func.sum(Invoice.amount_remaining), 0))
                                    .where(Invoice.member_id == member_id, overdue_filter())) or 0)

