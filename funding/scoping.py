"""The organisation wall: every ORM query of a scoped session sees only its organisations' rows.

A session carries an :class:`OrgScope` in ``session.info["scope"]`` once the person behind
the request (or the ``--as`` of a command) is known (``funding.web.require``, the command
line). From then on, one ``do_orm_execute`` listener adds a criterion to every SELECT,
UPDATE and DELETE the ORM runs in that session, for every table involved (joins and
subqueries included, aliases too): a row of another organisation is simply not there. A
route cannot forget it; a new table cannot either (a test checks that every mapped class
says how it is scoped).

Unscoped sessions (webhooks, the worker, the operator's command line, anonymous public
pages) see everything: their work is per organisation by construction, or public.

Each mapped class says how it belongs to an organisation, by inheriting one of the
mixins of funding/scoped.py (the placeholder column is overridden by the model's own definition) or by
naming a criterion in ``CUSTOM`` (tables reached through a parent, and people). Tables
that belong to nobody are listed in ``GLOBAL`` with the reason.

Core statements (``select(Table.__table__)``, ``text()``) are not ORM statements: the few
that exist (verification, exports, the webhook fast path) take an organisation id that
was itself found through the wall.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import event, exists, func, or_, select
from sqlalchemy.orm import Session, with_loader_criteria

from funding.scoped import CampaignScoped, MemberScoped, OrgScoped, SiteScoped


@dataclass(frozen=True)
class OrgScope:
    """Whose rows a session may see: ``orgs`` (None: every organisation, a network role)
    and ``user_id``, the person's own rows (their account, memberships, links)."""

    orgs: frozenset[int] | None
    user_id: int | None = None

    @property
    def everything(self) -> bool:
        return self.orgs is None

    def allows(self, org_id: int | None) -> bool:
        return self.orgs is None or (org_id is not None and org_id in self.orgs)


def set_scope(session, scope: OrgScope | None) -> None:
    """Install (or, with None, remove) the wall on a session (sync or async)."""
    target = getattr(session, "sync_session", session)
    if scope is None or (scope.everything and scope.user_id is None):
        target.info.pop("scope", None)
    else:
        target.info["scope"] = scope


def scope_of(session) -> OrgScope | None:
    return getattr(session, "sync_session", session).info.get("scope")


GLOBAL = {
    "journals": "the journal codes are the same reference list for every organisation",
    "installation_facts": "facts of the installation itself (its Stripe key prefix): no organisation, no person, no money",
    "link_revocations": "when the emailed links of a hashed address were revoked: a person, not an organisation; no money",
    "rate_limits": "counters of requests per hashed address or client IP: anonymous visitors, no organisation, no money",
    "process_heartbeats": "the service's own running processes: no organisation, no money",
    "stripe_tax_rates": "France's VAT rates as Stripe Tax Rates: the same few for every organisation, and no money",
}


@lru_cache(maxsize=512)
def _options(scope: OrgScope) -> tuple:
    """The wall's criteria for ``scope``, built once per scope and reused by every statement:
    building them costs about 2 ms of Python (15 criteria, their subqueries), which every ORM
    statement of every signed-in request paid (a till's tap ran four: 8 of its 16 ms). The
    options are immutable; SQLAlchemy's statement cache keys on them as on any other option."""
    from funding.auth.models import LoginToken, Membership, User
    from funding.bar.models import Batch, BatchLine
    from funding.campaigns.models import Campaign
    from funding.coworking.models import Member, Plan, PlanPrice
    from funding.mail.models import Email
    from funding.orgs.models import Organisation, Site
    from funding.payments.models import Payout, StripeEvent, StripeObject, StripeRequest

    orgs = sorted(scope.orgs or ())
    me = scope.user_id if scope.user_id is not None else -1
    if scope.everything:
        # A network role sees every organisation; only personal rows stay personal.
        return (with_loader_criteria(LoginToken, LoginToken.user_id == me),)

    sites = select(Site.id).where(Site.org_id.in_(orgs)).scalar_subquery()
    # The organisation that keeps the Stripe account: the one flagged, else the only one (funding.payments.books).
    # Written on the table, not the class: the criterion of organisations must not narrow "the only one".
    o = Organisation.__table__.c
    flagged = exists().where(o.uses_stripe)
    only_one = select(func.count(o.id)).scalar_subquery() == 1
    stripe_account = exists().where(o.id.in_(orgs), or_(o.uses_stripe, ~flagged & only_one))
    mixin = dict(include_aliases=True, track_closure_variables=False)
    exact = dict(include_aliases=True)
    options = [
        # Lambdas, because one criterion serves every class of the mixin (the lambda is
        # called with each); the organisation ids are read from the closure each time.
        with_loader_criteria(OrgScoped, lambda cls: cls.org_id.in_(orgs), **mixin),
        with_loader_criteria(SiteScoped, lambda cls: cls.site_id.in_(
            select(Site.id).where(Site.org_id.in_(orgs))), **mixin),
        with_loader_criteria(CampaignScoped, lambda cls: cls.campaign_id.in_(
            select(Campaign.id).where(Campaign.org_id.in_(orgs))), **mixin),
        with_loader_criteria(MemberScoped, lambda cls: cls.member_id.in_(
            select(Member.id).where(Member.org_id.in_(orgs))), **mixin),
        with_loader_criteria(Organisation, Organisation.id.in_(orgs), **exact),
        with_loader_criteria(PlanPrice, PlanPrice.plan_id.in_(select(Plan.id).where(Plan.site_id.in_(sites))), **exact),
        with_loader_criteria(BatchLine, BatchLine.batch_id.in_(select(Batch.id).where(Batch.org_id.in_(orgs))), **exact),
        with_loader_criteria(User, or_(User.id == me, User.id.in_(
            select(Membership.user_id).where(Membership.org_id.in_(orgs)))), **exact),
        with_loader_criteria(Membership, or_(Membership.user_id == me, Membership.org_id.in_(orgs)), **exact),
        with_loader_criteria(LoginToken, LoginToken.user_id == me, **exact),
        with_loader_criteria(Email, or_(Email.org_id.in_(orgs), Email.org_id.is_(None) & (Email.user_id == me)), **exact),
    ]
    # The Stripe account's own records belong to the organisation that holds the account.
    options += [with_loader_criteria(model, stripe_account, **exact)
                for model in (StripeEvent, StripeRequest, StripeObject, Payout)]
    return tuple(options)


# The classes whose criterion is written in _options() rather than inherited.
CUSTOM = {"organisations", "coworking_plan_prices", "bar_batch_lines", "users", "memberships", "login_tokens", "emails",
          "stripe_events", "stripe_requests", "stripe_objects", "stripe_payouts"}


# The one way through the wall, for the one thing that must see past it: finding a person by
# the exact address given (an account is unique across organisations). Grep for it.
THROUGH_THE_WALL = {"org_wall": False}


@event.listens_for(Session, "do_orm_execute")
def _wall(state) -> None:
    scope = state.session.info.get("scope")
    if scope is None or state.is_column_load or state.is_relationship_load:
        return
    if state.execution_options.get("org_wall") is False:
        return
    if state.is_select or state.is_update or state.is_delete:
        state.statement = state.statement.options(*_options(scope))
