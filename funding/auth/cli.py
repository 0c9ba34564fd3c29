"""``funding user …``: people who log in, their roles, a login link to bootstrap the first admin."""

from __future__ import annotations

import click

from funding.auth.models import Role
from funding.commands import ADMIN, CommandError, Context, choice, command, exclusive, group, out, root, who

ROLES = choice(Role)

user = group(root, "user", help="people who log in")


@command(user, "create", help="create a user", roles=ADMIN)
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", required=True, type=ROLES)
@click.option("--org", "siren", help="SIREN (optional with a single organisation)")
@click.option("--network", is_flag=True, help="the role in every organisation (the federation)")
async def user_create(ctx: Context, email: str, name: str, role: str, siren: str | None, network: bool) -> None:
    from funding.auth.service import create_user, normalise_email
    from funding.db import transaction
    from funding.orgs.service import organisation_for

    exclusive(org=siren, network=network)
    ctx.check_network(network)
    normalise_email(email)
    async with transaction(ctx.sessions) as session:
        org = None if network else await organisation_for(session, siren)
        made = await create_user(session, email=email, name=name, role=role, org_id=org.id if org else None,
                                 network=network, granted_by=who())
    out(f"user {made.email} created, {role} of {'the whole network' if org is None else org.siren}")


@command(user, "grant", help="give a person a role in an organisation (or --network), or --revoke it", roles=ADMIN)
@click.argument("email")
@click.option("--role", required=True, type=ROLES)
@click.option("--org", "siren", help="SIREN (optional with a single organisation)")
@click.option("--network", is_flag=True, help="the role in every organisation (the federation)")
@click.option("--revoke", is_flag=True, help="take the role back")
async def user_grant(ctx: Context, email: str, role: str, siren: str | None, network: bool, revoke: bool) -> None:
    """Give (or with --revoke take back) a role in an organisation or the network."""
    from sqlalchemy import select

    from funding.auth import service
    from funding.auth.models import User
    from funding.db import transaction
    from funding.orgs.service import organisation_for
    from funding.scoping import THROUGH_THE_WALL

    exclusive(org=siren, network=network)
    ctx.check_network(network)
    async with transaction(ctx.sessions) as session:
        person = await session.scalar(select(User).where(User.email == service.normalise_email(email))
                                      .execution_options(**THROUGH_THE_WALL))
        if person is None:
            raise CommandError(f"no user {email}")
        org = None if network else await organisation_for(session, siren)
        where = "the whole network" if org is None else org.siren
        if revoke:
            done = await service.revoke(session, person, role, org_id=org.id if org else None)
            out(f"{person.email}: {role} of {where} {'revoked' if done else 'was not granted'}")
        else:
            done = await service.grant(session, person, role, org_id=org.id if org else None, network=network,
                                       granted_by=who())
            out(f"{person.email}: {role} of {where} {'granted' if done else 'already held'}")


@command(user, "login-link", help="print a single-use login link (bootstrap the first admin)", roles=ADMIN, serving=True)
@click.argument("email")
async def user_login_link(ctx: Context, email: str) -> None:
    from sqlalchemy import select

    from funding.auth.models import User
    from funding.auth.service import issue_link, normalise_email
    from funding.db import transaction

    email = normalise_email(email)
    async with transaction(ctx.sessions) as session:
        person = await session.scalar(select(User).where(User.email == email, User.active))
        if person is None:
            raise CommandError(f"no active user {email}")
        link = await issue_link(session, person, ctx.settings)
    out(link)
