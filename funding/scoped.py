"""How a table belongs to an organisation: the mixins its model inherits.

They live apart from the wall itself (funding/scoping.py), which reads every model to build
its criteria: the models import this module, the wall imports the models, and nothing
imports back.
"""

from __future__ import annotations

from sqlalchemy.orm import Mapped, mapped_column


class OrgScoped:
    """A table whose rows carry their organisation."""

    org_id: Mapped[int] = mapped_column()


class SiteScoped:
    """A table whose rows carry their site (a site belongs to one organisation)."""

    site_id: Mapped[int] = mapped_column()


class CampaignScoped:
    """A table whose rows hang from a campaign."""

    campaign_id: Mapped[int] = mapped_column()


class MemberScoped:
    """A table whose rows hang from a coworking member."""

    member_id: Mapped[int] = mapped_column()
