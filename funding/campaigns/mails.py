"""The emails a backer receives, queued in the outbox once per event (dedupe keys)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from funding.campaigns.models import Campaign, Nature, Pledge, TaxReceipt, Tier
from funding.campaigns.pledges import manage_url
from funding.campaigns.receipt_pdf import attachment
from funding.campaigns.receipts import rate_sentence, receipt_code
from funding.clock import local_day
from funding.i18n import date, money
from funding.mail.service import enqueue


def _day(moment) -> str:
    return date(local_day(moment), "long") if moment else ""


SIGNATURE = "\n\nMerci de faire vivre les tiers-lieux du bassin thiernois.\nL'équipe Entre-Lab"


async def _send(session: AsyncSession, pledge: Pledge, campaign: Campaign, key: str, subject: str, body: str,
                receipt: TaxReceipt | None = None) -> None:
    """``receipt``: a tax receipt to join as a PDF (built when the email is sent)."""
    await enqueue(session, to=pledge.email, org_id=campaign.org_id, dedupe_key=f"campaign-pledge:{pledge.id}:{key}", subject=subject,
                  body_text=f"Bonjour {pledge.name},\n\n{body}{SIGNATURE}",
                  attachments=[attachment(receipt.id)] if receipt is not None else None)


def _what(pledge: Pledge, tier: Tier | None) -> str:
    amount = money(pledge.amount, pledge.currency)
    if tier is None:
        return f"{amount} (contribution libre)"
    return f"{amount} (« {tier.title} »)"


def _nature(pledge: Pledge) -> str:
    if pledge.nature == Nature.GIFT:
        return "C'est un don."
    return ("La valeur de la contrepartie dépasse ce que la loi tolère pour un don : c'est un achat en prévente "
            "(TVA comprise), sans reçu fiscal.")


async def paid(session: AsyncSession, pledge: Pledge, campaign: Campaign, tier: Tier | None,
               receipt: TaxReceipt | None) -> None:
    lines = [f"Nous avons bien reçu votre contribution de {_what(pledge, tier)} à la campagne « {campaign.title} ».",
             f"Référence : contribution n° {pledge.id}, payée le {_day(pledge.paid_at)}.", _nature(pledge)]
    if receipt is not None:
        lines.append(f"Votre reçu fiscal n° {receipt_code(receipt)} est joint à ce message (PDF) ; vous pouvez aussi le "
                     f"télécharger ici : {manage_url(pledge)}/recu\n{rate_sentence(receipt.donor_siren is not None)}")
    lines.append(f"Votre contribution en ligne : {manage_url(pledge)}")
    await _send(session, pledge, campaign, "paid", f"Reçu : votre contribution à « {campaign.title} »", "\n\n".join(lines),
                receipt)


async def card_saved(session: AsyncSession, pledge: Pledge, campaign: Campaign, tier: Tier | None) -> None:
    body = (f"Votre promesse de {_what(pledge, tier)} pour « {campaign.title} » est enregistrée, avec votre carte.\n\n"
            f"Rien n'est débité aujourd'hui. C'est une campagne « tout ou rien » : si l'objectif de "
            f"{money(campaign.goal, campaign.currency)} est atteint le {_day(campaign.ends_at)}, votre carte sera "
            f"débitée de {money(pledge.amount, pledge.currency)}. Sinon, rien ne sera débité.\n\n"
            f"Jusqu'à la fin de la campagne, vous pouvez voir ou annuler votre promesse et changer de carte :\n"
            f"{manage_url(pledge)}")
    await _send(session, pledge, campaign, "card-saved", f"Votre promesse pour « {campaign.title} »", body)


async def authentication_needed(session: AsyncSession, pledge: Pledge, campaign: Campaign) -> None:
    body = (f"La campagne « {campaign.title} » a atteint son objectif : merci !\n\n"
            f"Votre banque demande que vous confirmiez vous-même le paiement de {money(pledge.amount, pledge.currency)} "
            f"(authentification 3-D Secure). Confirmez-le ici avant le {_day(pledge.grace_until)} :\n"
            f"{manage_url(pledge)}\n\nSans confirmation à cette date, votre contribution sera annulée.")
    await _send(session, pledge, campaign, f"auth-{pledge.charge_attempt}", f"Confirmez votre paiement pour « {campaign.title} »", body)


async def card_declined(session: AsyncSession, pledge: Pledge, campaign: Campaign) -> None:
    body = (f"La campagne « {campaign.title} » a atteint son objectif, mais votre carte a refusé le paiement de "
            f"{money(pledge.amount, pledge.currency)}.\n\n"
            f"Vous pouvez enregistrer une autre carte jusqu'au {_day(pledge.grace_until)} :\n{manage_url(pledge)}\n\n"
            "Passé ce délai, votre contribution sera annulée.")
    await _send(session, pledge, campaign, f"declined-{pledge.charge_attempt}", f"Paiement refusé pour « {campaign.title} »", body)


async def pledge_failed(session: AsyncSession, pledge: Pledge, campaign: Campaign) -> None:
    body = (f"Le délai pour régler votre contribution de {money(pledge.amount, pledge.currency)} à « {campaign.title} » "
            "est passé sans paiement : elle est annulée et rien n'a été débité.")
    await _send(session, pledge, campaign, "failed", f"Contribution annulée : « {campaign.title} »", body)


async def campaign_failed(session: AsyncSession, pledge: Pledge, campaign: Campaign) -> None:
    body = (f"La campagne « {campaign.title} » s'est terminée sans atteindre son objectif de "
            f"{money(campaign.goal, campaign.currency)}.\n\nComme prévu pour une campagne « tout ou rien », votre carte "
            f"ne sera pas débitée : votre promesse de {money(pledge.amount, pledge.currency)} est annulée. "
            "Merci de l'avoir soutenue.")
    await _send(session, pledge, campaign, "campaign-failed", f"« {campaign.title} » : objectif non atteint, rien n'est débité", body)


async def cancelled(session: AsyncSession, pledge: Pledge, campaign: Campaign) -> None:
    body = (f"Votre promesse de {money(pledge.amount, pledge.currency)} pour « {campaign.title} » est annulée, "
            "à votre demande. Rien n'a été débité.")
    await _send(session, pledge, campaign, "canceled", f"Promesse annulée : « {campaign.title} »", body)


async def new_card(session: AsyncSession, pledge: Pledge, campaign: Campaign) -> None:
    body = (f"Votre nouvelle carte est enregistrée pour votre contribution de {money(pledge.amount, pledge.currency)} "
            f"à « {campaign.title} ».\n\n{manage_url(pledge)}")
    await _send(session, pledge, campaign, f"card-{pledge.card_sessions}", f"Nouvelle carte enregistrée : « {campaign.title} »", body)


async def refunded(session: AsyncSession, pledge: Pledge, campaign: Campaign, amount: int,
                   receipt: TaxReceipt | None) -> None:
    body = (f"Nous vous avons remboursé {money(amount, pledge.currency)} sur votre contribution n° {pledge.id} "
            f"à « {campaign.title} ».")
    if pledge.nature == Nature.GIFT and receipt is not None:
        body += (f"\n\nVotre reçu fiscal précédent est annulé ; le reçu n° {receipt_code(receipt)} le remplace "
                 f"pour {money(receipt.amount, receipt.currency)} : {manage_url(pledge)}/recu")
    elif pledge.nature == Nature.GIFT:
        body += "\n\nLe reçu fiscal de ce don est annulé."
    await _send(session, pledge, campaign, f"refund-{pledge.amount_refunded}", f"Remboursement : « {campaign.title} »", body,
                receipt if pledge.nature == Nature.GIFT else None)
