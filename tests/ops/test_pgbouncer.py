"""Behind PgBouncer in transaction mode (issue 19): the webhook, ledger and campaign paths, run
through a real PgBouncer (Debian's package) that the harness starts in front of the test database
(``?pgbouncer=1``: no named prepared statement kept, no setting sent at connection time). Without
pgbouncer installed they are skipped, and fail under FUNDING_TEST_REQUIRE_ALL=1 (.ci/run installs it).

Without the service's care both fail at once: PgBouncer 1.18 refuses the planning setting asyncpg
sent as a startup parameter ("unsupported startup parameter: plan_cache_mode"), and a statement
prepared by name on one server connection is executed on another ("prepared statement
__asyncpg_stmt_6__ does not exist")."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from sqlalchemy import func, select, text

from funding.campaigns import deadline
from funding.campaigns.models import Pledge
from funding.campaigns.pledges import ContributionError
from funding.db import create_engine
from funding.ledger.verify import verify_org
from funding.mail.models import Email
from funding.payments.models import StripeEvent
from funding.settings import load_settings
from funding.stripe_gateway import StripeGateway, sign_payload
from tests.support.campaigns import OffSession, active_pledge, campaign_row, make_campaign, pledge, tiers_of
from tests.support.cli import funding
from tests.support.db import TEST_SEAL_KEY, sealed_sessions, skip_or_fail
from tests.support.pgbouncer import BINARY, PgBouncer
from tests.support.stripe_objects import BASE, event
from tests.support.webhooks import SECRET, entries, make_payment, paid_donation, workers_on
from tests.support.world import make_world, post_gift
from webhooks.processing import drain


@pytest.fixture(scope="module")
def bouncer(pg_database):
    url, reason = pg_database
    if url is None:
        skip_or_fail(reason)
    if BINARY is None:
        skip_or_fail("pgbouncer is not installed (apt-get install pgbouncer)")
    from sqlalchemy.engine import make_url

    from tests.support.db import PG_ADMIN_URL

    users = [make_url(url).username, make_url(PG_ADMIN_URL).username]
    with PgBouncer(url, [u for u in users if u], pool_size=4) as running:
        yield running


@pytest.fixture
def pg_url(pg_url, bouncer):  # the suite's fresh database (emptied), reached through PgBouncer
    return bouncer.url(pg_url)


@pytest.fixture
def database_url(pg_url):
    return pg_url


async def test_the_service_really_goes_through_pgbouncer_in_transaction_mode(pg_url, bouncer):
    """Many clients, few server connections: two sessions' transactions share a server backend,
    which only transaction pooling does; and nothing the service sends is refused."""
    engine = create_engine(pg_url, pool_size=12)
    try:
        async def backend() -> int:
            async with engine.begin() as conn:
                pid = await conn.scalar(text("SELECT pg_backend_pid()"))
                await asyncio.sleep(0.05)
                return pid

        pids = await asyncio.gather(*(backend() for _ in range(12)))
        assert len(set(pids)) <= 4 < 12  # default_pool_size = 4 server connections for 12 clients
    finally:
        await engine.dispose()
    assert "unsupported startup parameter" not in bouncer.log()


@pytest.fixture
async def pg_sessions(pg_url):
    engine = create_engine(pg_url)
    yield sealed_sessions(engine)
    await engine.dispose()


async def test_webhooks_intake_and_four_concurrent_drains(pg_url, fake_stripe, hook_client):
    """Deliveries through the endpoint (the inbox's group commit, a raw driver statement), then
    four workers processing at once: one entry, one receipt."""
    async with workers_on(pg_url, 4) as workers:
        world = await make_world(workers.sessions)
        payment = await make_payment(workers.sessions, world)
        cs, pi, ch, txn = paid_donation(fake_stripe, world, payment, fee=100)
        events = [event("charge.succeeded", ch), event("checkout.session.completed", cs), event("payment_intent.succeeded", pi)]

        async def post(evt):
            body = json.dumps(evt).encode()
            return (await hook_client.post("/webhooks/stripe", content=body, headers={
                "stripe-signature": sign_payload(body, SECRET), "content-type": "application/json"})).status_code

        assert set(await asyncio.gather(*(post(e) for e in events for _ in range(3)))) == {200}
        await asyncio.gather(*(drain(workers.sessions, g, batch=1) for g in workers.gateways))
        await drain(workers.sessions, workers.gateways[0])
        assert await entries(workers.sessions) == [(f"stripe:{txn['id']}", [("5115", 4900), ("627", 100), ("75411", -5000)])]
        async with workers.sessions() as session:
            assert set((await session.scalars(select(StripeEvent.status))).all()) == {"processed"}
            assert await session.scalar(select(func.count(Email.id))) == 1


async def test_ledger_twenty_concurrent_postings_are_numbered_without_gaps_and_verify(pg_url, pg_sessions):
    world = await make_world(pg_sessions)
    posted = await asyncio.gather(*(post_gift(pg_sessions, world, key=f"bouncer-{n}", amount=1000 + n) for n in range(20)))
    assert sorted(p.number for p in posted) == list(range(1, 21))
    engine = create_engine(pg_url)
    try:
        async with engine.connect() as conn:
            report = await verify_org(conn, world.org_id)
    finally:
        await engine.dispose()
    assert report.ok and report.entries == 20, report.problems
    settings = load_settings({}, FUNDING_ENV="test", DATABASE_URL=pg_url, LEDGER_SEAL_KEY=TEST_SEAL_KEY,
                             SECRET_KEY="test-secret-key-0123456789")
    result = await funding(settings, "ledger", "verify")
    assert result.exit_code == 0 and "OK — 20 entries" in result.stdout, result.stdout + result.stderr


async def test_campaigns_fifty_backers_for_ten_units_then_two_workers_at_the_deadline(pg_url, pg_sessions, fake_stripe):
    world = await make_world(pg_sessions)
    stocked = await make_campaign(pg_sessions, world, slug="stock", days_left=30, tiers=[{"title": "Couteau", "amount": 8000, "stock": 10}])
    (tier,) = await tiers_of(pg_sessions, stocked.id)

    async def backer(n: int):
        try:
            return await pledge(pg_sessions, stocked.id, tier=str(tier.id), amount="", email=f"backer{n}@example.org")
        except ContributionError as exc:
            return exc

    outcomes = await asyncio.gather(*(backer(n) for n in range(50)))
    assert sum(isinstance(o, Pledge) for o in outcomes) == 10
    campaign = await make_campaign(pg_sessions, world, slug="aon", mode="all_or_nothing", goal=1000)
    promises = [await active_pledge(pg_sessions, campaign.id, amount="25", email=f"p{n}@example.org") for n in range(10)]
    off_session = OffSession(fake_stripe)
    settings = load_settings({}, FUNDING_ENV="test", LEDGER_SEAL_KEY=TEST_SEAL_KEY, DATABASE_URL=pg_url,
                             SECRET_KEY="test-secret-key-0123456789", BASE_URL="http://testserver",
                             STRIPE_SECRET_KEY="sk_test_unit", STRIPE_WEBHOOK_SECRET="whsec_x", STRIPE_API_BASE=BASE)
    moment = campaign.ends_at + dt.timedelta(seconds=1)

    async def worker():
        engine = create_engine(pg_url)
        gw = StripeGateway(settings, timeout=5)
        try:
            return await deadline.run(sealed_sessions(engine), settings, gw, now=moment)
        finally:
            await gw.aclose()
            await engine.dispose()

    done = await asyncio.gather(worker(), worker())
    assert sum(done) >= 1 + 10 and len(off_session.created) == 10  # one decision and ten charges between them
    # each key: the installation's prefix, then our record (pledge, charge attempt, resource, try)
    assert sorted(k.split("-", 2)[2] for k in off_session.keys) == sorted(f"pledge-{p.id}-charge-1-payment_intents-1" for p in promises)
    row = await campaign_row(pg_sessions, campaign.id)
    assert (row.status, row.collected_total, row.backers_count) == ("succeeded", 25_000, 10)


async def test_bar_forty_taps_at_once_on_one_site_are_chained_without_gaps(pg_url, pg_sessions):
    """The till's one-statement tap (bar_ring_up), as the till's web answer runs it, from forty
    tills at once through PgBouncer's four server connections: every tap a line, numbered
    without gaps, chained, and the books verify."""
    from funding.bar.models import SaleLine
    from funding.bar.till import ring_up_at_once
    from funding.db import statement_connection
    from funding.scoping import OrgScope
    from tests.support.bar import make_bar, sell

    world = await make_world(pg_sessions)
    bar = await make_bar(pg_sessions, world, members=8)
    await sell(pg_sessions, bar, "Café")  # the site's first line makes its head
    engine = create_engine(pg_url, pool_size=40)
    scope = OrgScope(frozenset({world.org_id}), world.users["staff"])
    products = list(bar.products.values())

    async def tap(n: int):
        async with statement_connection(engine) as conn:
            return await ring_up_at_once(conn, scope, slug=world.site_slug, product_id=products[n % len(products)],
                                         member_id=bar.members[n % len(bar.members)], quantity=1, limit=10**9,
                                         recorded_by="Louis")

    try:
        for _ in range(3):
            rungs = await asyncio.gather(*(tap(n) for n in range(40)))
            assert all(rung is not None for rung in rungs)
        async with engine.connect() as conn:
            report = await verify_org(conn, world.org_id)
    finally:
        await engine.dispose()
    async with pg_sessions() as session:
        seqs = (await session.scalars(select(SaleLine.seq).order_by(SaleLine.seq))).all()
    assert list(seqs) == list(range(1, 122)) and report.ok, report.problems
