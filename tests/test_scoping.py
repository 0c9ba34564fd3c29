"""The organisation wall itself: every table says how it belongs to an organisation, and the
criteria follow each session's own organisations (the SQL is cached, the ids are not)."""

from __future__ import annotations

from sqlalchemy import func, select

from funding.db import Base, transaction
from funding.ledger.models import Entry
from funding.models import metadata
from funding.orgs.models import Organisation, Site
from funding.scoped import CampaignScoped, MemberScoped, OrgScoped, SiteScoped
from funding.scoping import CUSTOM, GLOBAL, OrgScope, set_scope
from tests.support.world import make_world, post_gift


def test_every_table_says_how_it_belongs_to_an_organisation():
    mixins = (OrgScoped, SiteScoped, CampaignScoped, MemberScoped)
    classes = {m.class_.__tablename__: m.class_ for m in Base.registry.mappers}
    unsaid = {name for name, cls in classes.items()
              if not issubclass(cls, mixins) and name not in CUSTOM and name not in GLOBAL}
    assert unsaid == set(), "say how these tables belong to an organisation (funding/scoping.py)"
    assert set(classes) == {t.name for t in metadata.sorted_tables} - {"alembic_version"}


async def test_interleaved_sessions_each_see_their_own_organisation(sessions):
    a, b = await make_world(sessions, name="A"), await make_world(sessions, name="B")
    await post_gift(sessions, a, key="a1")
    await post_gift(sessions, b, key="b1")
    await post_gift(sessions, b, key="b2")
    for _ in range(3):  # the same statements, alternately for one organisation and the other
        for world, entries in ((a, 1), (b, 2)):
            async with transaction(sessions) as session:
                set_scope(session, OrgScope(frozenset({world.org_id}), world.users["accountant"]))
                assert await session.scalar(select(func.count(Entry.id))) == entries
                assert (await session.scalars(select(Organisation.siren))).all() == [world.siren]
                assert {s.org_id for s in (await session.scalars(select(Site))).all()} == {world.org_id}
    async with transaction(sessions) as session:
        set_scope(session, OrgScope(None, a.users["admin"]))  # a network role
        assert await session.scalar(select(func.count(Entry.id))) == 3


async def test_the_wall_is_built_once_per_scope_not_per_statement(sessions):
    """Building the criteria cost ~2 ms of Python, paid by every ORM statement of a signed-in
    request (half a till's tap): they are built once per scope and reused."""
    from funding import scoping

    world = await make_world(sessions, name="C")
    scope = OrgScope(frozenset({world.org_id}), world.users["staff"])
    async with transaction(sessions) as session:
        set_scope(session, scope)
        await session.scalar(select(func.count(Entry.id)))
        built = scoping._options.cache_info().misses
        for _ in range(5):
            assert (await session.scalars(select(Organisation.siren))).all() == [world.siren]
    async with transaction(sessions) as session:  # another request of the same person: the same criteria
        set_scope(session, OrgScope(frozenset({world.org_id}), world.users["staff"]))
        await session.scalar(select(func.count(Site.id)))
    assert scoping._options.cache_info().misses == built
