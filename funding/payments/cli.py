"""``funding reconcile``: every paid payout checked against its balance transactions and the ledger."""

from __future__ import annotations

import click

from funding.commands import Context, command, out, root, stripe_gateway


@command(root, "reconcile", help="check every paid payout against its balance transactions and the ledger",
         serving=True)
@click.option("--all", "again", is_flag=True, help="check reconciled payouts again too")
@click.option("--balance", is_flag=True, help="compare the books' Stripe account (5115) with Stripe's balance instead")
async def reconcile(ctx: Context, again: bool, balance: bool) -> int:
    from funding.money import format_plain
    from funding.payments import reconcile as payouts

    if balance:
        async with stripe_gateway(ctx.settings) as gw:
            sides = await payouts.balance_check(ctx.sessions, gw)
        for side in sides:
            verdict = "agrees" if side.ok else f"DIFFERS by {format_plain(side.difference, side.currency)}"
            out(f"{side.currency}: books (5115) {format_plain(side.ledger, side.currency)}, Stripe "
                f"{format_plain(side.stripe, side.currency)} — {verdict}")
        if not sides:
            out("no balance on either side")
        return 0 if all(side.ok for side in sides) else 1
    async with stripe_gateway(ctx.settings) as gw:
        checks = await payouts.reconcile(ctx.sessions, gw, only_unreconciled=not again)
    bad = 0
    for check in checks:
        if check.ok:
            out(f"{check.payout_id}: reconciled — {format_plain(check.amount, check.currency)} {check.currency}")
        else:
            bad += 1
            detail = []
            if check.difference:
                detail.append(f"payout {format_plain(check.amount, check.currency)} ≠ transactions "
                              f"{format_plain(check.transactions_net, check.currency)} (difference "
                              f"{format_plain(check.difference, check.currency)})")
            if check.missing:
                detail.append(f"no ledger entry for {', '.join(check.missing)}")
            out(f"{check.payout_id}: UNRECONCILED — {'; '.join(detail)}")
    if not checks:
        out("no payout to check")
    return 1 if bad else 0
