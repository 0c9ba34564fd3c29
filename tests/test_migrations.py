"""Migrations are the only source of the schema: models and migrations must agree."""

from __future__ import annotations

import datetime as dt

import anyio
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from funding.migrate import alembic_config, head_revisions
from funding.models import metadata
from tests.support.db import owner_url, pg_admin, run_async, skip_or_fail


async def test_models_and_migrations_do_not_drift(engine):
    def diff(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    async with engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == [], f"models and migrations differ: write a migration\n{differences}"


async def test_the_database_is_at_the_head_revision_with_every_ledger_trigger(engine):
    async with engine.connect() as conn:
        assert set((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars()) == head_revisions()
        if engine.dialect.name == "sqlite":
            names = (await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))).scalars().all()
        else:
            names = (await conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))).scalars().all()
    assert {"entries_insert_guard", "entries_advance_head", "entries_delete_guard", "closings_insert_guard"} <= set(names)


def test_downgrade_to_nothing_and_back_up(tmp_path):
    from alembic import command

    url = f"sqlite+aiosqlite:///{tmp_path / 'roundtrip.db'}"
    config = alembic_config(url)
    command.upgrade(config, "heads")
    command.downgrade(config, "base")
    command.upgrade(config, "heads")

    async def tables():
        from funding.db import create_engine

        engine = create_engine(url)
        async with engine.connect() as conn:
            found = (await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))).scalars().all()
        await engine.dispose()
        return set(found)

    assert {"entries", "postings", "closings"} <= anyio.run(tables)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    """A database with no schema yet, to migrate step by step."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'steps.db'}"
        return
    url, reason = request.getfixturevalue("pg_database")
    if url is None:
        skip_or_fail(reason)
    name = f"{url.rsplit('/', 1)[1]}_steps"
    run_async(lambda: pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{owner_url(url).rsplit('/', 1)[0]}/{name}"
    finally:
        run_async(lambda: pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_roles_become_memberships_and_nobody_gains_or_loses_a_power(empty_database):
    """0013: a role with its organisation stays there; a team role without one goes to the only
    organisation, or to the network when there are several; a member goes where they have records."""
    from alembic import command

    config = alembic_config(empty_database)
    command.upgrade(config, "0012")

    async def before_and_after():
        from funding.db import create_engine

        engine = create_engine(empty_database)
        async with engine.begin() as conn:
            now = "2026-11-30 10:00:00"
            for org_id, siren in ((1, "100000009"), (2, "100000017")):
                await conn.execute(text("INSERT INTO organisations (id, name, siren, vat_liable, general_interest, address, "
                                        "currency, fiscal_year_start_month, uses_stripe, created_at) VALUES "
                                        f"({org_id}, 'O{org_id}', '{siren}', false, false, '', 'EUR', 1, false, '{now}')"))
                await conn.execute(text(f"INSERT INTO sites (id, org_id, slug, name, town, is_central, created_at) VALUES "
                                        f"({org_id}, {org_id}, 's{org_id}', 'S', '', true, '{now}')"))
            people = [(1, "admin", 2), (2, "accountant", None), (3, "member", None), (4, "member", 1)]
            for uid, role, org in people:
                await conn.execute(text("INSERT INTO users (id, email, name, role, org_id, locale, active, created_at) VALUES "
                                        f"({uid}, 'u{uid}@example.org', 'U', '{role}', {org or 'NULL'}, 'fr', true, '{now}')"))
            await conn.execute(text("INSERT INTO coworking_members (id, user_id, site_id, org_id, created_at, updated_at) "
                                    f"VALUES (1, 3, 2, 2, '{now}', '{now}')"))
        await engine.dispose()
        await anyio.to_thread.run_sync(command.upgrade, config, "heads")
        engine = create_engine(empty_database)
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT user_id, org_id, role FROM memberships ORDER BY user_id, role"))).all()
        await engine.dispose()
        return [tuple(r) for r in rows]

    assert anyio.run(before_and_after) == [(1, 2, "admin"), (2, None, "accountant"), (3, 2, "member"), (4, 1, "member")]


def test_organisations_made_before_0022_get_the_accounts_of_contributions_in_kind(empty_database):
    """0022: every existing chart gets 860–875 (the annual accounts' classe 8), once; an account the
    organisation already had keeps its own label."""
    from alembic import command

    config = alembic_config(empty_database)
    command.upgrade(config, "0019")

    async def before_and_after():
        from funding.db import create_engine

        engine = create_engine(empty_database)
        async with engine.begin() as conn:
            now = "2026-11-30 10:00:00"
            for org_id, siren in ((1, "100000009"), (2, "100000017")):
                await conn.execute(text("INSERT INTO organisations (id, name, siren, vat_liable, general_interest, address, "
                                        "currency, fiscal_year_start_month, uses_stripe, created_at) VALUES "
                                        f"({org_id}, 'O{org_id}', '{siren}', false, false, '', 'EUR', 1, false, '{now}')"))
            await conn.execute(text("INSERT INTO accounts (org_id, number, label, active, created_at) VALUES "
                                    f"(2, '870', 'Bénévolat (notre intitulé)', true, '{now}')"))
        await engine.dispose()
        await anyio.to_thread.run_sync(command.upgrade, config, "heads")
        engine = create_engine(empty_database)
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT org_id, number, label FROM accounts WHERE number LIKE '8%' "
                                            "ORDER BY org_id, number"))).all()
        await engine.dispose()
        return [tuple(r) for r in rows]

    rows = anyio.run(before_and_after)
    numbers = ["860", "861", "862", "864", "870", "871", "875"]
    assert [(o, n) for o, n, _label in rows] == [(1, n) for n in numbers] + [(2, n) for n in numbers]
    assert (2, "870", "Bénévolat (notre intitulé)") in rows and (1, "864", "Personnel bénévole") in rows


def test_tabs_are_filled_from_the_lines_no_batch_claimed(empty_database):
    """0044: each member's tab at each site holds the amounts of their lines not yet claimed by a
    batch (sales less cancellations); a walk-in's lines hold none."""
    from alembic import command

    config = alembic_config(empty_database)
    command.upgrade(config, "0043")

    async def before_and_after():
        from funding.db import create_engine

        engine = create_engine(empty_database)
        now = "2026-12-06 10:00:00"
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO organisations (id, name, siren, vat_liable, general_interest, address, "
                                    "currency, fiscal_year_start_month, uses_stripe, created_at) VALUES "
                                    f"(1, 'O', '100000009', false, false, '', 'EUR', 1, false, '{now}')"))
            for site in (1, 2):
                await conn.execute(text(f"INSERT INTO sites (id, org_id, slug, name, town, is_central, created_at) VALUES "
                                        f"({site}, 1, 's{site}', 'S', '', {'true' if site == 1 else 'false'}, '{now}')"))
                await conn.execute(text("INSERT INTO bar_products (id, site_id, name, category, price, currency, vat_rate, active, "
                                        f"position, created_at, updated_at) VALUES ({site}, {site}, 'Café', '', 150, 'EUR', 100, "
                                        f"true, 0, '{now}', '{now}')"))
                await conn.execute(text("INSERT INTO bar_heads (site_id, org_id, last_seq, last_hash, last_closing_hash, "
                                        f"last_archive_hash) VALUES ({site}, 1, 0, '{'0' * 64}', '{'0' * 64}', '{'0' * 64}')"))
            for uid in (1, 2):
                await conn.execute(text("INSERT INTO users (id, email, name, locale, active, created_at) VALUES "
                                        f"({uid}, 'u{uid}@example.org', 'U', 'fr', true, '{now}')"))
            await conn.execute(text("INSERT INTO bar_tickets (id, site_id, org_id, status, created_by, created_at) VALUES "
                                    f"(1, 1, 1, 'open', '', '{now}')"))
            # site, member, ticket, quantity (negative: the cancellation of the line before)
            lines = [(1, 1, None, 2), (1, 1, None, 1), (1, 1, None, -1), (1, 2, None, 3), (2, 1, None, 4), (1, None, 1, 5)]
            seqs, last = {1: 0, 2: 0}, {1: "0" * 64, 2: "0" * 64}  # each site's chain (the insert guard checks it)
            for n, (site, member, ticket, quantity) in enumerate(lines, start=1):
                seqs[site] += 1
                prev, last[site] = last[site], f"{n:064d}"
                kind, cancels, reason = ("cancel", n - 1, "erreur") if quantity < 0 else ("sale", None, "")
                await conn.execute(text(
                    "INSERT INTO bar_sale_lines (id, site_id, org_id, seq, day, recorded_at, kind, member_id, ticket_id, product_id, "
                    "label, category, unit_price, quantity, amount, vat_rate, currency, cancels_id, reason, recorded_by, "
                    "prev_hash, hash) VALUES (:id, :site, 1, :seq, '2026-12-06', :now, :kind, :member, :ticket, :site, 'Café', "
                    "'', 150, :q, :amount, 100, 'EUR', :cancels, :reason, 'Louis', :prev, :hash)"),
                    {"id": n, "site": site, "seq": seqs[site], "now": dt.datetime(2026, 12, 6, 10), "kind": kind, "member": member, "ticket": ticket,
                     "q": quantity, "amount": 150 * quantity, "cancels": cancels, "reason": reason, "prev": prev,
                     "hash": last[site]})
            await conn.execute(text("INSERT INTO bar_batches (id, site_id, org_id, member_id, key, amount, currency, line_count, "
                                    f"status, created_at) VALUES (1, 1, 1, 1, '2026-11', 300, 'EUR', 1, 'ready', '{now}')"))
            await conn.execute(text("INSERT INTO bar_batch_lines (sale_line_id, batch_id) VALUES (1, 1)"))  # claimed: billed
        await engine.dispose()
        await anyio.to_thread.run_sync(command.upgrade, config, "heads")
        engine = create_engine(empty_database)
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT site_id, member_id, org_id, owed FROM bar_tabs ORDER BY 1, 2"))).all()
        await engine.dispose()
        return [tuple(r) for r in rows]

    assert anyio.run(before_and_after) == [(1, 1, 1, 150 - 150), (1, 2, 1, 450), (2, 1, 1, 600)]
