"""Locale selection and translations (Babel). French first, English second.

Message ids are French; the English catalog lives in ``funding/locale/en`` as a .po
file, compiled in memory when the process starts (no binary .mo in the repository).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import io
from functools import cache
from pathlib import Path

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from funding.money import format_money, format_plain
from funding.settings import LOCALES

LOCALE_DIR = Path(__file__).parent / "locale"
_current = contextvars.ContextVar("locale", default="fr")
BABEL = {"fr": "fr_FR", "en": "en_GB"}


class _French(NullTranslations):
    """The source text is French: French's plural rule (0 and 1 take the singular: "0 jour restant")."""

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return msgid1 if abs(n) < 2 else msgid2


@cache
def translations(locale: str) -> NullTranslations:
    """The locale's catalog, compiled once per process (the English .po takes ~50 ms to read and
    compile: every message and every page of an English reader paid it while this cache sat on
    _French by mistake)."""
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == "fr" or not po.exists():
        return _French()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


def set_locale(locale: str) -> contextvars.Token:
    return _current.set(locale if locale in LOCALES else "fr")


def reset_locale(token: contextvars.Token) -> None:
    _current.reset(token)


def get_locale() -> str:
    return _current.get()


def gettext(message: str, **variables) -> str:
    text = translations(get_locale()).gettext(message)
    return text % variables if variables else text


_ = gettext


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated where it is shown."""
    return message


SOURCE_LABELS = {
    "public": N_("Subventions publiques"),
    "private": N_("Mécénat et partenaires privés"),
    "crowdfunding": N_("Financement participatif"),
    "self": N_("Recettes propres"),
    "internal": N_("Mouvements internes"),
}


def ngettext(singular: str, plural: str, n: int, **variables) -> str:
    text = translations(get_locale()).ngettext(singular, plural, n)
    variables.setdefault("num", n)
    return text % variables


def pick_locale(query: str | None, stored: str | None, accept_language: str | None, default: str) -> str:
    for candidate in (query, stored):
        if candidate in LOCALES:
            return candidate
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LOCALES:
            return tag
    return default


def money(amount, currency: str = "EUR") -> str:
    if amount is None:
        return ""
    return format_money(int(amount), currency, get_locale())


def plain_money(amount, currency: str = "EUR") -> str:
    """An amount as a person types it back into a form: ``150`` → ``1,50`` (no symbol, no grouping)."""
    if amount is None:
        return ""
    return format_plain(int(amount), currency)


def date(value, fmt: str = "medium") -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return format_datetime(value, format=fmt, locale=BABEL[get_locale()])
    return format_date(value, format=fmt, locale=BABEL[get_locale()])


def day(value: dt.date | dt.datetime | None) -> str:
    """A day as a message states it: ``05/03/2025`` in French (as the emails always wrote it),
    ``5 March 2025`` in English (no day/month order to guess)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.date()
    if get_locale() == "fr":
        return value.strftime("%d/%m/%Y")
    return date(value, "long")


def percent(part: int, whole: int) -> str:
    if not whole:
        return "–"
    tenths = (part * 1000 * 2 + whole) // (2 * whole)
    sep = "," if get_locale() == "fr" else "."
    nbsp = "\u202f" if get_locale() == "fr" else ""
    return f"{tenths // 10}{sep}{tenths % 10}{nbsp}%"
