"""A local SMTP server that keeps what it receives, and the attachments of a message."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator

from aiosmtpd.controller import Controller

from tests.support.live import free_port


class Inbox:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.url = ""

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted"


def running_inbox() -> Iterator[Inbox]:
    """For a fixture: an inbox listening on a free port while the test runs."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.url = f"smtp://127.0.0.1:{controller.port}"
    yield inbox
    controller.stop()


def attachments(message) -> dict[str, bytes]:
    """The attachments' exact bytes (base64 on the wire, so nothing rewrites line ends)."""
    return {part.get_filename(): part.get_payload(decode=True) for part in message.iter_attachments()}
