"""Behind PgBouncer in transaction mode (issue 19): the webhook, ledger and campaign paths, run
through a real PgBouncer (Debian's package) that the harness starts in front of the test database.

The tests below are the suite's own, imported so they run here again with the database reached
through PgBouncer (``?pgbouncer=1``: no named prepared statement kept, no setting sent at
connection time). Without pgbouncer installed they are skipped, and fail under
FUNDING_TEST_REQUIRE_ALL=1 (.ci/run installs it)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from funding.db import create_engine
from tests.campaigns.test_concurrency import (  # noqa: F401  (collected again here, through PgBouncer)
    pg_sessions,
    test_fifty_backers_racing_for_the_last_ten_units_make_exactly_ten_pledges,
    test_two_workers_closing_at_once_charge_each_promise_once,
)
from tests.ledger.test_integrity import (  # noqa: F401
    test_twenty_concurrent_validations_get_twenty_consecutive_numbers,
    test_verify_cli_is_green_on_an_intact_ledger,
)
from tests.support.db import skip_or_fail
from tests.support.pgbouncer import BINARY, PgBouncer
from tests.webhooks.test_intake import (  # noqa: F401
    test_a_signed_event_is_stored_once_and_acknowledged_every_time,
)
from tests.webhooks.test_processing import (  # noqa: F401
    test_a_batch_that_fails_as_a_whole_is_applied_one_by_one,
    test_a_failing_event_is_retried_then_dead_lettered_and_does_not_block_others,
    test_a_paid_donation_becomes_one_balanced_entry_with_stripes_fee,
    test_tables_a_backlog_grew_are_analysed_once_they_changed_by_a_fifth,
    test_the_same_event_processed_concurrently_on_postgresql_has_one_effect,
)


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
