"""Every table of the service, imported so that ``Base.metadata`` is complete.

Alembic's migrations are the only source of the schema; this metadata is what the
drift test compares them against.
"""

from funding.auth.models import LoginToken, User  # noqa: F401
from funding.db import Base
from funding.ledger.models import (  # noqa: F401
    Account,
    AuxAccount,
    Closing,
    Entry,
    Grant,
    Journal,
    LedgerHead,
    Posting,
)
from funding.mail.models import Email  # noqa: F401
from funding.orgs.models import Organisation, Site  # noqa: F401
from funding.payments.models import Payment, Payout, StripeEvent, StripeObject, StripeRequest  # noqa: F401

metadata = Base.metadata
