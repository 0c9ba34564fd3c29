"""One family of errors: a refusal meant for a person.

Every error the product raises on purpose — bad input, a rule that says no, something not
found, Stripe unavailable — is a :class:`FundingError`: ``str(exc)`` is what the person
reads (French first, through the catalog where it was written with ``_``), ``status`` is
the HTTP answer it maps to. The web edge (``funding.web.funding_error``) renders it once,
the command line (``funding.commands``, around every command) prints it once; neither knows
the subclasses.
Anything else that escapes is a bug: logged with its traceback, answered with a plain 500
or "unexpected error".

Domains subclass it (``LedgerError``, ``CampaignError``…) so that callers can still catch
their own kind, and give a subclass another ``status`` where it means something else.
"""

from __future__ import annotations


class FundingError(Exception):
    """A refusal meant for a person: the message says why, ``status`` is its HTTP answer."""

    status: int = 400

    def __init__(self, message: str = "", *, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class NotFound(FundingError):
    status = 404


class Forbidden(FundingError):
    status = 403


class Conflict(FundingError):
    status = 409


class Unavailable(FundingError):
    """Something we depend on (Stripe, SMTP) did not answer: try again later."""

    status = 503
