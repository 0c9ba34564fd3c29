"""A member on a phone logs in by magic link — read from a real SMTP server started by the
test — and changes plan, seeing Stripe's proration preview before confirming."""

from __future__ import annotations

import email
import email.policy
import re
import threading
import time

import pytest

from funding.settings import load_settings
from tests.support.browser import _subscription
from tests.support.browser import join as _join
from tests.support.browser import prepare as _prepare
from tests.support.db import TEST_SEAL_KEY
from tests.support.live import LiveServer, free_port

pytestmark = pytest.mark.browser


class Inbox:
    """What the SMTP server received: (recipients, message)."""

    def __init__(self):
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def wait_for(self, to: str, subject: str, timeout: float = 20.0) -> email.message.EmailMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for rcpts, message in self.messages:
                    if to in rcpts and message["Subject"] == subject:
                        return message
            time.sleep(0.1)
        raise AssertionError(f"no email « {subject} » to {to} within {timeout} s")


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    yield inbox
    controller.stop()


@pytest.fixture
def mail_server(database_url, smtp):
    """The app with the Stripe sandbox, sending its emails to the test's SMTP server."""
    from tests.support.e2e import served

    port = free_port()
    settings = load_settings({}, FUNDING_ENV="test", LEDGER_SEAL_KEY=TEST_SEAL_KEY, DATABASE_URL=database_url, SECRET_KEY="browser-secret-0123456789",
                             BASE_URL=f"http://127.0.0.1:{port}", SMTP_URL=f"smtp://127.0.0.1:{smtp.port}",
                             WORKER_POLL_SECONDS="0.2")
    with LiveServer(served(settings), port) as server:
        server.settings = settings
        yield server


def test_a_member_logs_in_by_magic_link_from_a_real_smtp_server_and_changes_plan(mail_server, smtp, phone):
    world = _prepare(mail_server.settings)
    address = "julie.fayolle@example.org"
    _join(mail_server, world, address)

    page = phone
    page.goto(mail_server.url + "/membre")
    page.wait_for_url(re.compile(r".*/login\?next=/membre$"))
    page.get_by_label("Adresse e-mail").fill(address)
    page.get_by_role("button", name="Recevoir un lien de connexion").click()
    page.get_by_text("un lien de connexion vient de lui être envoyé").wait_for()

    message = smtp.wait_for(address, "Votre lien de connexion à Entre-Lab")
    body = message.get_body(("plain",)).get_content()
    link = re.search(r"http://127\.0\.0\.1:\d+/login/\S+", body).group(0)
    page.goto(link)
    page.get_by_role("button", name="Me connecter").click()
    page.wait_for_url(mail_server.url + "/membre")
    page.get_by_role("heading", name="Mon abonnement").wait_for()
    assert "Poste nomade" in page.locator("#main").inner_text()

    page.get_by_role("link", name="Changer de formule").click()
    page.get_by_label(re.compile("Poste fixe")).check()
    page.get_by_role("button", name="Voir le montant à payer").click()
    page.get_by_role("heading", name=re.compile("Aperçu")).wait_for()
    due = page.locator("#amount-due").inner_text()
    assert re.fullmatch(r"\d+,\d\d\s€", due.replace("\u202f", "").replace("\u00a0", " ")), due
    assert page.get_by_text("Crédit pour le temps non utilisé de « Poste nomade »").is_visible()
    page.get_by_role("button", name="Confirmer le changement").click()
    page.wait_for_url(mail_server.url + "/membre")
    page.get_by_text("Votre formule est maintenant « Poste fixe »").wait_for()

    # It fits a phone: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth > window.innerWidth") is False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        row, plan = _subscription(mail_server.settings)
        if plan is not None and plan.code == "fixe":
            break
        time.sleep(0.2)
    assert plan.code == "fixe" and row.status == "active"
