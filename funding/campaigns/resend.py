"""The links a backer or a donor was emailed, sent again on request; and how long they live.

A contribution's link (to manage it, see its receipt) and a tax receipt's link are signed and
dated: they open for a while (:data:`PLEDGE_LINK_MAX_AGE`, :data:`RECEIPT_LINK_MAX_AGE`), then
say so and point here. Asking for them again (``/contributions/renvoyer``) emails every
contribution and every receipt of an address with fresh links — the same answer, whether or
not the address gave anything (the work happens after the answer is sent), counted by the
rate limits like a login link.

A person who forwarded such an email by mistake revokes its links (the button on a
contribution's page, or staff with ``funding campaigns revoke-links``): every link to a
contribution or a receipt of that address signed before that second stops opening, and fresh
links are emailed at once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from funding.campaigns.models import Campaign, Pledge, TaxReceipt
from funding.campaigns.pledges import pledge_token
from funding.campaigns.receipts import receipt_code, receipt_token
from funding.db import dialect_insert, dialect_of, utcnow
from funding.donations.service import donor_token
from funding.errors import FundingError
from funding.i18n import N_
from funding.i18n import gettext as _
from funding.limits.models import LinkRevocation
from funding.limits.service import key_hash
from funding.mail.compose import recipient_locale, render
from funding.mail.service import enqueue
from funding.settings import Settings

DAY = 86_400
PLEDGE_LINK_MAX_AGE = 400 * DAY  # a campaign and its delivery fit well inside it
RECEIPT_LINK_MAX_AGE = 550 * DAY  # the receipt is needed for the next spring's tax return
EXPIRED = N_("Ce lien a expiré. Demandez de nouveaux liens à l'adresse /contributions/renvoyer : ils partent par e-mail.")
REVOKED = N_("Ce lien a été révoqué : de nouveaux liens ont été envoyés par e-mail. Demandez-les de nouveau à "
              "l'adresse /contributions/renvoyer si besoin.")
MOST = 50  # links of one address in one email, newest first


class LinkRevoked(FundingError):
    """A link to a contribution or a receipt signed before its address's links were revoked."""

    status = 410

    def __init__(self) -> None:
        super().__init__(_(REVOKED))


def _email_key(settings: Settings, email: str) -> str:
    return key_hash(settings, "links", email)


async def revoke_links(session: AsyncSession, settings: Settings, email: str, *, now: dt.datetime | None = None) -> None:
    """From this second on, no link to a contribution or a receipt of ``email`` signed earlier
    opens (links signed in this very second still do: the fresh ones sent next)."""
    moment = (now or utcnow()).replace(microsecond=0)
    table = LinkRevocation.__table__
    insert = dialect_insert(dialect_of(session))
    await session.execute(insert(table).values(email_hash=_email_key(settings, email), revoked_before=moment)
                          .on_conflict_do_update(index_elements=["email_hash"], set_={"revoked_before": moment}))
    for pledge in (await session.scalars(select(Pledge).where(Pledge.email == email))).all():
        pledge.access_token = pledge_token(settings.secret_key, pledge.id)  # what later emails link to
    await session.flush()


async def check_not_revoked(session: AsyncSession, settings: Settings, email: str | None, signed_at: dt.datetime) -> None:
    """LinkRevoked if the links of ``email`` were revoked after ``signed_at`` (aware or naive UTC)."""
    if not email:
        return
    before = await session.scalar(select(LinkRevocation.revoked_before)
                                  .where(LinkRevocation.email_hash == _email_key(settings, email)))
    if before is not None and signed_at.replace(tzinfo=None) < before:
        raise LinkRevoked


async def resend_links(session: AsyncSession, settings: Settings, email: str, locale: str | None = None) -> int | None:
    """Queue one email with fresh links to every contribution and receipt of ``email``; None if
    the address gave nothing (and nothing is sent). ``locale``: the language of the page the
    links were asked from; else the address's (French unless it is an English-speaking user's)."""
    pledges = (await session.execute(
        select(Pledge, Campaign.title).join(Campaign, Campaign.id == Pledge.campaign_id)
        .where(Pledge.email == email).order_by(Pledge.id.desc()).limit(MOST))).all()
    receipts = (await session.scalars(
        select(TaxReceipt).where(TaxReceipt.donor_email == email, TaxReceipt.voided_at.is_(None))
        .order_by(TaxReceipt.id.desc()).limit(MOST))).all()
    if not pledges and not receipts:
        return None
    base = settings.base_url
    links = {
        "pledges": [{"title": title, "amount": pledge.amount, "currency": pledge.currency,
                     "url": f"{base}/contributions/{pledge_token(settings.secret_key, pledge.id)}"} for pledge, title in pledges],
        "receipts": [{"code": receipt_code(receipt), "amount": receipt.amount, "currency": receipt.currency,
                      "url": base + (f"/recus/{receipt_token(settings.secret_key, receipt.id)}" if receipt.pledge_id is not None
                                     else f"/soutenir/recu/{donor_token(settings.secret_key, receipt.payment_id or 0)}")}
                     for receipt in receipts],
    }
    return await enqueue(session, to=email, dedupe_key=f"links:{email}:{utcnow():%Y%m%d%H%M%S%f}",
                         **render("campaigns/links", locale or await recipient_locale(session, email=email), **links))
