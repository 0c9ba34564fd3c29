"""Sending a closed month's exports: against a real SMTP server started by the test
(aiosmtpd), through the command line and the worker; retried, reported, never twice."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from sqlalchemy import func, select, update

from funding.db import transaction
from funding.exports import service
from funding.exports.jobs import send_closed_months
from funding.exports.models import ExportLog, ExportRecipient, ExportRun
from funding.ledger.models import Seal
from funding.ledger.service import EntryDraft, Line, close_month, post
from funding.mail.models import Email
from funding.mail.service import send_pending
from funding.orgs.models import Organisation
from tests.support import fec_checker
from tests.support.cli import funding
from tests.support.db import TEST_SEAL_KEY, sealed_sessions
from tests.support.exports import monthly_fec_name
from tests.support.live import free_port
from tests.support.smtp import attachments, running_inbox

LAST_MONTH_END = dt.date.today().replace(day=1) - dt.timedelta(days=1)
PERIOD = f"{LAST_MONTH_END:%Y-%m}"


@pytest.fixture
def smtp():
    yield from running_inbox()


async def closed_month(sessions, world) -> None:
    async with transaction(sessions) as session:
        await post(session, [
            EntryDraft(org_id=world.org_id, site_id=world.site_id, journal="BQ", entry_date=LAST_MONTH_END, label="Mécénat",
                       piece_ref="VIR-1", funding_source="private", lines=[Line("512", 250000), Line("7542", -250000)]),
            EntryDraft(org_id=world.org_id, site_id=world.site_id, journal="ST", entry_date=LAST_MONTH_END, label="Don",
                       piece_ref="ch_1", funding_source="crowdfunding", source_key="stripe:txn_1",
                       lines=[Line("5115", 4885), Line("627", 115), Line("75411", -5000)]),
        ])
        await close_month(session, world.org_id, PERIOD)


async def cli(settings, smtp_url: str, *args):
    return await funding(settings, *args, SMTP_URL=smtp_url)


async def test_send_emails_each_accountant_the_closed_months_exports_once(settings, sessions, world, smtp):
    await closed_month(sessions, world)
    result = await cli(settings, smtp.url, "exports", "send", "--period", PERIOD)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("envoyé") == 3 and "ÉCHEC" not in result.stdout
    assert len(smtp.messages) == 3  # FEC, CSV journal, trial balance: one email per format
    accountant = f"accountant-{world.siren[-4:]}@example.org"
    assert {m["To"] for m in smtp.messages} == {accountant}
    files = {name: data for m in smtp.messages for name, data in attachments(m).items()}
    fec_name = monthly_fec_name(world.siren, LAST_MONTH_END)
    assert fec_checker.check_fec(fec_name, files[fec_name]) == []
    assert fec_name.replace(".txt", "-description.txt") in files
    async with sessions() as session:
        logs = (await session.scalars(select(ExportLog).where(ExportLog.channel == "email"))).all()
    assert {log.filename: log.sha256 for log in logs} == {
        name: hashlib.sha256(data).hexdigest() for name, data in files.items() if "description" not in name}
    assert all(log.taken_by == accountant and log.closed for log in logs)
    # Each email carries the month's seal: a copy the database's owner cannot rewrite.
    async with sessions() as session:
        sealed = await session.scalar(select(Seal).where(Seal.kind == "month", Seal.period == PERIOD))
    for message in smtp.messages:
        body = message.get_body(("plain",)).get_content()
        assert f"Sceau n° {sealed.seq} (month {PERIOD})" in body and sealed.hash in body and sealed.signature in body

    again = await cli(settings, smtp.url, "exports", "send", "--period", PERIOD)
    assert again.exit_code == 0 and again.stdout.count("déjà envoyé") == 3
    assert len(smtp.messages) == 3  # never twice


async def test_a_failed_send_is_reported_retried_and_then_delivered_once(settings, sessions, world, smtp):
    await closed_month(sessions, world)
    dead = f"smtp://127.0.0.1:{free_port()}"  # nobody listens there
    result = await cli(settings, dead, "exports", "send", "--period", PERIOD, "--to", "cabinet@example.org", "--formats", "fec")
    assert result.exit_code == 1 and "ÉCHEC" in result.stdout and "ConnectionRefusedError" in result.stdout
    async with sessions() as session:
        queued = await session.scalar(select(Email).where(Email.to_addr == "cabinet@example.org"))
    assert queued.status == "pending" and queued.attempts == 1 and queued.last_error

    # The worker's mail job retries when it is due, against a server that answers now.
    async with transaction(sessions) as session:
        await session.execute(update(Email).values(next_attempt_at=dt.datetime(2000, 1, 1)))
    assert await send_pending(sessions, settings.with_(smtp_url=smtp.url)) == 1
    assert len(smtp.messages) == 1 and smtp.messages[0]["To"] == "cabinet@example.org"
    assert await send_pending(sessions, settings.with_(smtp_url=smtp.url)) == 0
    again = await cli(settings, smtp.url, "exports", "send", "--period", PERIOD, "--to", "cabinet@example.org", "--formats", "fec")
    assert "déjà envoyé" in again.stdout and len(smtp.messages) == 1


async def test_large_exports_travel_as_a_signed_link(settings, sessions, world, smtp, client, monkeypatch):
    await closed_month(sessions, world)
    monkeypatch.setattr(service, "ATTACHMENT_LIMIT", 100)
    async with transaction(sessions) as session:
        org = await session.get(Organisation, world.org_id)
        queued = await service.queue_period(session, settings, org, PERIOD, to="cabinet@example.org", formats="csv")
    assert [q.mode for q in queued] == ["link"]
    await send_pending(sessions, settings.with_(smtp_url=smtp.url))
    (message,) = smtp.messages
    assert not list(message.iter_attachments())
    link = re.search(r"http://testserver(/exports/lien/\S+)", message.get_body(("plain",)).get_content()).group(1)
    response = await client.get(link)
    assert response.status_code == 200 and response.content.startswith("\ufeffnumero;".encode())
    async with sessions() as session:
        log = await session.scalar(select(ExportLog).where(ExportLog.channel == "link"))
    assert log.taken_by == "cabinet@example.org" and log.sha256 == hashlib.sha256(response.content).hexdigest()


async def test_the_worker_sends_a_newly_closed_month_once(settings, sessions, world, smtp):
    assert await send_closed_months(sessions, settings, None) == 0  # nothing closed yet
    await closed_month(sessions, world)
    assert await send_closed_months(sessions, settings, None) == 3
    assert await send_closed_months(sessions, settings, None) == 0
    await send_pending(sessions, settings.with_(smtp_url=smtp.url))
    assert len(smtp.messages) == 3
    async with sessions() as session:
        run_row = await session.scalar(select(ExportRun))
        assert (run_row.period, run_row.emails) == (PERIOD, 3)
        assert await session.scalar(select(func.count(Email.id)).where(Email.status == "sent")) == 3


async def test_an_open_month_is_not_sent_and_bad_arguments_say_why(settings, sessions, world, smtp):
    result = await cli(settings, smtp.url, "exports", "send", "--period", f"{dt.date.today():%Y-%m}")
    assert result.exit_code == 1 and "n'est pas clos" in result.stderr and "Traceback" not in result.stderr
    result = await cli(settings, smtp.url, "exports", "send", "--period", "2026-13")
    assert result.exit_code == 1 and "période invalide" in result.stderr
    await closed_month(sessions, world)
    result = await cli(settings, smtp.url, "exports", "send", "--period", PERIOD, "--to", "pas-une-adresse")
    assert result.exit_code == 1 and "invalide" in result.stderr
    result = await cli(settings, smtp.url, "exports", "send", "--period", PERIOD, "--to", "mallory@example.org,eve")
    assert result.exit_code == 1 and "une seule adresse" in result.stderr
    result = await cli(settings, smtp.url, "exports", "recipients", "--org", world.siren, "--add", "mallory@example.org,eve")
    assert result.exit_code == 1 and "une seule adresse" in result.stderr and "Traceback" not in result.stderr
    async with sessions() as session:
        assert await session.scalar(select(func.count(ExportRecipient.id))) == 0
    assert smtp.messages == []


async def test_two_workers_racing_on_a_closed_month_queue_each_email_once(pg_url):
    """PostgreSQL: the outbox's unique dedupe key and the run's unique (org, period) decide."""
    import asyncio

    from funding.db import create_engine
    from funding.settings import load_settings
    from tests.support.world import make_world

    settings = load_settings({}, FUNDING_ENV="test", LEDGER_SEAL_KEY=TEST_SEAL_KEY, DATABASE_URL=pg_url, SECRET_KEY="test-secret-key-0123456789",
                             BASE_URL="http://testserver")
    engine = create_engine(settings.database_url)
    try:
        sessions = sealed_sessions(engine)
        world = await make_world(sessions)
        await closed_month(sessions, world)
        counts = await asyncio.gather(*(send_closed_months(sessions, settings, None) for _ in range(4)))
        assert sum(counts) == 3
        async with sessions() as session:
            assert await session.scalar(select(func.count(Email.id))) == 3
            assert await session.scalar(select(func.count(ExportRun.id))) == 1
            assert await session.scalar(select(func.count(ExportLog.id))) == 3
    finally:
        await engine.dispose()
