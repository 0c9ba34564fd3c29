"""Emails written from templates, in the recipient's language.

An email called ``name`` is two templates in ``templates/mail/``: ``<name>.txt`` (the text
part; it sets ``subject`` at its top) and ``<name>.html`` (the HTML part, autoescaped, on
``_layout.html``). Their sentences are French, in ``{% trans %}`` blocks, so that the
catalog tool extracts them (babel.cfg); the English catalog translates them.

    await enqueue(session, to=user.email, user_id=user.id, dedupe_key=...,
                  **render("login_link", user.locale, name=user.name, link=link))

The language is the recipient's (``users.locale``: ``recipient_locale`` finds it from a user
id or an address); anyone who is not a user reads French.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any, TypedDict

import jinja2
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from funding import i18n
from funding.auth.models import User
from funding.settings import LOCALES, PROJECT_ROOT

MAIL_TEMPLATES = PROJECT_ROOT / "templates" / "mail"


class Rendered(TypedDict):
    """What ``enqueue`` takes besides the recipient and the key: ``enqueue(..., **rendered)``."""

    subject: str
    body_text: str
    body_html: str


day = i18n.day  # the filter's name in the templates


@cache
def environment(locale: str) -> jinja2.Environment:
    """One environment per language, its catalog installed once: rendering never swaps a
    catalog under another rendering."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(MAIL_TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,  # a text part ends with its last line, as the emails always did
    )
    env.filters.update(money=i18n.money, date=i18n.date, day=day)
    installer: Any = env  # jinja2.ext.i18n adds install_gettext_translations, untyped
    installer.install_gettext_translations(i18n.translations(locale), newstyle=True)
    return env


def render(name: str, locale: str | None = "fr", /, **context: Any) -> Rendered:
    """The email ``name`` in ``locale`` (French when it is not one of ours): its subject, text
    and HTML. Amounts (``|money``) and days (``|day``) take the language's formats."""
    locale = locale if locale in LOCALES else "fr"
    env = environment(locale)
    token = i18n.set_locale(locale)
    try:
        text = env.get_template(f"{name}.txt").make_module({**context, "locale": locale})
        subject = str(getattr(text, "subject", "")).strip()
        if not subject:
            raise ValueError(f"templates/mail/{name}.txt sets no subject")
        html = env.get_template(f"{name}.html").render({**context, "locale": locale, "subject": subject})
    finally:
        i18n.reset_locale(token)
    return {"subject": subject, "body_text": str(text), "body_html": html}


async def recipient_locale(session: AsyncSession, *, user_id: int | None = None, email: str | None = None) -> str:
    """The language of the person an email goes to: the user's (by id, else by address), else French."""
    locale = None
    if user_id is not None:
        locale = await session.scalar(select(User.locale).where(User.id == user_id))
    elif email:
        locale = await session.scalar(select(User.locale).where(func.lower(User.email) == email.strip().lower()))
    return locale if locale in LOCALES else "fr"


async def recipient_locales(session: AsyncSession, emails: Iterable[str]) -> dict[str, str]:
    """The language of each address of a batch, in one query: ``{address lowercased: locale}``,
    French for an address that is no user's (``.get(address.lower(), "fr")`` reads it)."""
    wanted = {email.strip().lower() for email in emails if email}
    found = {email: "fr" for email in wanted}
    if wanted:
        rows = await session.execute(select(func.lower(User.email), User.locale).where(func.lower(User.email).in_(wanted)))
        found.update({email: locale for email, locale in rows.all() if locale in LOCALES})
    return found
