"""Emails: queued in the outbox inside the business transaction, sent after commit.

A message is enqueued once per purpose (``dedupe_key``). Sending claims a row
(pending → sending), talks SMTP, then marks it sent; a failure is retried with
back-off and ends visibly as ``failed``. A row left in ``sending`` by a crash is
marked ``unknown`` for a person to look at, never resent blindly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import smtplib
import ssl
from collections.abc import Awaitable, Callable, Sequence
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import unquote, urlsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from funding.db import dialect_insert, dialect_of, insert_ignore, rowcount, utcnow
from funding.emails import check_email
from funding.errors import FundingError
from funding.mail.models import Email, EmailStatus
from funding.settings import Settings

log = logging.getLogger("funding.mail")
MAX_ATTEMPTS = 6
STALE_SENDING = dt.timedelta(minutes=10)


class AttachmentError(FundingError):
    """An attachment could not be built; the email is retried like a failed send."""


# kind -> async loader(sessions, settings, reference) -> (filename, mime type, bytes).
# Domains register theirs from their service module.
AttachmentLoader = Callable[[async_sessionmaker, Settings, dict], Awaitable[tuple[str, str, bytes]]]
ATTACHMENT_LOADERS: dict[str, AttachmentLoader] = {}


def register_attachment(kind: str, loader: AttachmentLoader) -> None:
    ATTACHMENT_LOADERS[kind] = loader


async def load_attachments(sessions: async_sessionmaker, settings: Settings, email: Email) -> list[tuple[str, str, bytes]]:
    if not email.attachments:
        return []
    from funding.domains import parts

    parts("service")  # the loaders register themselves on import
    files = []
    for ref in json.loads(email.attachments):
        loader = ATTACHMENT_LOADERS.get(ref.get("kind", ""))
        if loader is None:
            raise AttachmentError(f"no loader for attachments of kind {ref.get('kind')!r}")
        files.append(await loader(sessions, settings, ref))
    return files


async def enqueue(
    session: AsyncSession,
    *,
    to: str,
    subject: str,
    body_text: str,
    dedupe_key: str,
    body_html: str | None = None,
    user_id: int | None = None,
    org_id: int | None = None,
    attachments: list[dict] | None = None,
) -> int | None:
    """Queue an email; returns its id, or None if this purpose was already queued.
    ``org_id``: the organisation the email is about (its staff see it; None is personal)."""
    return await insert_ignore(session, Email, _row(to=to, subject=subject, body_text=body_text, dedupe_key=dedupe_key,
                                                    body_html=body_html, user_id=user_id, org_id=org_id,
                                                    attachments=attachments),
                               ["dedupe_key"])


def _row(*, to: str, subject: str, body_text: str, dedupe_key: str, body_html: str | None = None,
         user_id: int | None = None, org_id: int | None = None, attachments: list[dict] | None = None) -> dict:
    now = utcnow()
    return {
        "dedupe_key": dedupe_key,
        "user_id": user_id,
        "org_id": org_id,
        "to_addr": check_email(to),  # one address, never a list for SMTP
        "subject": subject,
        "body_text": body_text,
        "body_html": body_html,
        "attachments": json.dumps(attachments, sort_keys=True) if attachments else None,
        "status": EmailStatus.PENDING,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
    }


async def enqueue_many(session: AsyncSession, emails: list[dict]) -> None:
    """Queue several emails (each given as ``enqueue``'s keyword arguments) in one executemany;
    one whose ``dedupe_key`` is already queued is left as it is."""
    if not emails:
        return
    insert = dialect_insert(dialect_of(session))
    await session.execute(insert(Email.__table__).on_conflict_do_nothing(index_elements=["dedupe_key"]),
                          [_row(**email) for email in emails])


def build_message(settings: Settings, email: Email, files: Sequence[tuple[str, str, bytes]] = ()) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = check_email(email.to_addr)
    msg["Subject"] = email.subject
    msg["Message-ID"] = make_msgid(idstring=f"email-{email.id}", domain="entre-lab.fr")
    msg.set_content(email.body_text)
    if email.body_html:
        msg.add_alternative(email.body_html, subtype="html")
    for filename, mime, data in files:
        maintype, _, subtype = mime.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
    return msg


def smtp_send(smtp_url: str, message: EmailMessage) -> None:
    parts = urlsplit(smtp_url)
    host, port = parts.hostname or "localhost", parts.port
    client: smtplib.SMTP  # or its subclass SMTP_SSL
    if parts.scheme == "smtps":
        client = smtplib.SMTP_SSL(host, port or 465, timeout=30, context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(host, port or (587 if parts.scheme == "smtp+starttls" else 25), timeout=30)
    with client:
        if parts.scheme == "smtp+starttls":
            client.starttls(context=ssl.create_default_context())
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(message)


async def send_pending(sessions: async_sessionmaker, settings: Settings, *, limit: int = 50) -> int:
    """Send what is due. Returns how many were sent."""
    now = utcnow()
    async with sessions() as session:
        await session.execute(
            update(Email)
            .where(Email.status == EmailStatus.SENDING, Email.next_attempt_at < now - STALE_SENDING)
            .values(status=EmailStatus.UNKNOWN, last_error="interrupted while sending: check before resending")
        )
        ids = (
            await session.scalars(
                select(Email.id).where(Email.status == EmailStatus.PENDING, Email.next_attempt_at <= now).order_by(Email.id).limit(limit)
            )
        ).all()
        await session.commit()
    sent = 0
    for email_id in ids:
        async with sessions() as session:
            claimed = await session.execute(
                update(Email)
                .where(Email.id == email_id, Email.status == EmailStatus.PENDING)
                .values(status=EmailStatus.SENDING, attempts=Email.attempts + 1, next_attempt_at=utcnow())
            )
            await session.commit()
            if rowcount(claimed) != 1:
                continue
            email = await session.get(Email, email_id)
        error = None
        if settings.smtp_url:
            try:
                files = await load_attachments(sessions, settings, email)
                await asyncio.to_thread(smtp_send, settings.smtp_url, build_message(settings, email, files))
            except (OSError, smtplib.SMTPException, AttachmentError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
        else:
            log.info("no SMTP_URL: email %s to %s kept in the outbox (%s)", email.id, email.to_addr, email.subject)
        async with sessions() as session:
            if error is None:
                await session.execute(update(Email).where(Email.id == email_id).values(status=EmailStatus.SENT, sent_at=utcnow(), last_error=None))
                sent += 1
            else:
                final = email.attempts >= MAX_ATTEMPTS
                log.warning("email %s to %s failed (attempt %s): %s", email.id, email.to_addr, email.attempts, error)
                await session.execute(
                    update(Email)
                    .where(Email.id == email_id)
                    .values(
                        status=EmailStatus.FAILED if final else EmailStatus.PENDING,
                        last_error=error,
                        next_attempt_at=utcnow() + dt.timedelta(seconds=30 * 2**email.attempts),
                    )
                )
            await session.commit()
    return sent
