"""``funding org create`` and ``funding site create``: organisations and their sites."""

from __future__ import annotations

import click

from funding.commands import ADMIN, Context, command, group, out, root

org = group(root, "org", help="organisations")
site = group(root, "site", help="sites (tiers-lieux)")


@command(org, "create", help="create an organisation and its chart of accounts")
@click.option("--name", required=True)
@click.option("--siren", required=True)
@click.option("--vat-number")
@click.option("--vat-liable", is_flag=True)
@click.option("--general-interest", is_flag=True)
@click.option("--rna")
@click.option("--address")
async def org_create(ctx: Context, name: str, siren: str, vat_number: str | None, vat_liable: bool,
                     general_interest: bool, rna: str | None, address: str | None) -> None:
    from funding.db import transaction
    from funding.orgs.service import create_organisation

    async with transaction(ctx.sessions) as session:
        created = await create_organisation(session, name=name, siren=siren, vat_number=vat_number, vat_liable=vat_liable,
                                            general_interest=general_interest, rna=rna, address=address or "")
    out(f"organisation {created.name} ({created.siren}) created with its chart of accounts")


@command(site, "create", help="create a site", roles=ADMIN)
@click.option("--org", "siren", help="SIREN (optional with a single organisation)")
@click.option("--slug", required=True)
@click.option("--name", required=True)
@click.option("--town")
@click.option("--central", is_flag=True)
async def site_create(ctx: Context, siren: str | None, slug: str, name: str, town: str | None, central: bool) -> None:
    from funding.db import transaction
    from funding.orgs.service import create_site, organisation_for

    async with transaction(ctx.sessions) as session:
        owner = await organisation_for(session, siren)
        made = await create_site(session, org_id=owner.id, slug=slug, name=name, town=town or "", is_central=central)
    out(f"site {made.slug} ({made.name}) created")
