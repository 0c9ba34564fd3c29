"""Every table of the service, imported so that ``Base.metadata`` is complete.

Alembic's migrations are the only source of the schema; this metadata is what the
drift test compares them against. Each domain's ``models`` module is found by
``funding.domains``.
"""

from funding.db import Base
from funding.domains import parts

parts("models")
metadata = Base.metadata
