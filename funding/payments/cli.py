"""``funding reconcile``: every paid payout checked against its balance transactions and the ledger."""

from __future__ import annotations

import click

from funding.commands import Context, command, out, root, stripe_gateway


@command(root, "reconcile", help="check every paid payout against its balance transactions and the ledger",
         serving=True)
@click.option("--all", "again", is_flag=True, help="check reconciled payouts again too")
async def reconcile(ctx: Context, again: bool) -> int:
    from funding.money import format_plain
    from funding.payments import reconcile as payouts

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
