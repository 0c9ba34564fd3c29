"""The development mailbox: outside production, read the emails the service would send."""

from __future__ import annotations

from sqlalchemy import select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from funding.mail.models import Email
from funding.web import db, render


async def mailbox(request: Request) -> Response:
    if not request.app.state.settings.demo_mailbox:
        raise HTTPException(404)  # only a development installation, whose emails go nowhere else
    async with db(request) as session:
        emails = (await session.scalars(select(Email).order_by(Email.id.desc()).limit(100))).all()
    return render(request, "mailbox.html", {"emails": emails})


routes = [Route("/dev/mailbox", mailbox, name="mailbox")]
