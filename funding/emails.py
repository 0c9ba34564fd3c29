"""One email address per field, checked by a well-kept library (email-validator).

Every address that enters — a form, a command, an import — goes through :func:`check_email`,
and so does every address the outbox hands to SMTP: ``mallory@example.org,eve`` is one
field holding two recipients, and is refused, never split nor passed on as a list.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from funding.errors import FundingError
from funding.i18n import gettext as _

MAX_LENGTH = 254


class InvalidEmail(FundingError):
    """Not one valid address."""


def check_email(text: str | None) -> str:
    """The one address ``text`` holds, normalised (domain and local part in lower case), or
    :class:`InvalidEmail` with a clear French message. Syntax only: no DNS lookup."""
    raw = (text or "").strip()
    if not raw or len(raw) > MAX_LENGTH or any(c in raw for c in ",;\r\n<>"):
        raise InvalidEmail(_("Adresse e-mail invalide : indiquez une seule adresse, du type nom@domaine.fr "
                             "(sans virgule, point-virgule ni retour à la ligne)."))
    try:
        found = validate_email(raw, check_deliverability=False)
    except EmailNotValidError:
        raise InvalidEmail(_("Adresse e-mail invalide : indiquez une seule adresse, du type nom@domaine.fr "
                             "(sans virgule, point-virgule ni retour à la ligne).")) from None
    return found.normalized.lower()
