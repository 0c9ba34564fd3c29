"""The tamper suite: what someone holding the database file or its owner role can do, with the
guards switched off, and how ``ledger verify`` names it once it is given the seals an accountant
kept (the published feed saved before the attack). Cases that recompute the hashes pass a
verification without seals — that is why the seals exist — and each case says which seal broke.
Every case runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from funding.bar.catalog import add_product
from funding.bar.closings import close_day
from funding.bar.till import ring_up
from funding.db import session_factory, transaction
from funding.exports import service as exports
from funding.exports.service import Digest, record_taken, resolve_scope
from funding.ledger.canonical import chain_hash, entry_document
from funding.ledger.models import GENESIS_HASH
from funding.ledger.seals import Keyring, feed, feed_csv, parse_kept, seal
from funding.ledger.service import EntryDraft, close_month, credit, debit, post
from funding.ledger.verify import verify_org
from funding.orgs.models import Site
from funding.settings import Settings, generate_seal_key
from tests.support.cli import funding
from tests.support.db import TEST_SEAL_KEY
from tests.support.tamper import without_triggers
from tests.support.world import make_world


def month_start(today: dt.date, back: int) -> dt.date:
    index = today.year * 12 + today.month - 1 - back
    return dt.date(index // 12, index % 12 + 1, 1)


@dataclass
class Books:
    org_id: int
    siren: str
    site_slug: str
    kept: bytes  # the feed as an accountant saved it, before anything happened
    closed_month: str


async def _gift(session, world, day: dt.date, n: int) -> None:
    await post(session, EntryDraft(
        org_id=world.org_id, site_id=world.site_id, journal="ST", entry_date=day, label=f"Don {n}", piece_ref=f"ch_{n}",
        funding_source="crowdfunding", lines=[debit("5115", 4000 + n), debit("627", 100), credit("75411", 4100 + n)]))


async def make_books(sessions) -> Books:
    """Entries in two closed months (sealed), entries today sealed by the bar's day closing, then
    two entries after the last seal; an export taken; the feed saved by an accountant."""
    world = await make_world(sessions)
    today = dt.date.today()
    two, one = month_start(today, 2), month_start(today, 1)
    async with transaction(sessions) as session:
        for n, day in enumerate([two, two, two, one, one, one], start=1):
            await _gift(session, world, day, n)
        await close_month(session, world.org_id, two.strftime("%Y-%m"))
        await close_month(session, world.org_id, one.strftime("%Y-%m"))
        for n in (7, 8):
            await _gift(session, world, today, n)
        scope = await resolve_scope(session, siren=world.siren, site=None, start=two, end=today)
        digest = Digest()
        digest.add(b"fec")
        await record_taken(session, scope, "fec", digest, taken_by="compta@example.org", channel="web")
        site = await session.get(Site, world.site_id)
        product = await add_product(session, site, name="Café", category="Boissons", price="1,50", vat_rate="10")
        await ring_up(session, site, product_id=product.id, member_id=world.users["member"], limit=5000, recorded_by="L")
    async with transaction(sessions) as session:
        site = await session.get(Site, world.site_id)
        await close_day(session, site, closed_by="Louis")  # its tab sale is entry 9; the seal holds entry 9
        for n in (10, 11):
            await _gift(session, world, today, n)
    keyring = Keyring.from_settings(Settings(seal_key=TEST_SEAL_KEY))
    async with sessions() as session:
        kept = feed_csv(await feed(session, keyring, siren=world.siren))
    return Books(world.org_id, world.siren, world.site_slug, kept, one.strftime("%Y-%m"))


async def _rechain(conn, org_id: int, start: int) -> None:
    """Recompute every entry's hash from ``start`` and the head: what an intruder does to hide an edit."""
    prev = GENESIS_HASH if start == 1 else (await conn.execute(text(
        f"SELECT hash FROM entries WHERE org_id = {org_id} AND number = {start - 1}"))).scalar_one()
    entries = (await conn.execute(text(
        f"SELECT * FROM entries WHERE org_id = {org_id} AND number >= {start} ORDER BY number"))).mappings().all()
    for e in entries:
        postings = (await conn.execute(text(
            f"SELECT line_no, account_number, aux_code, amount, currency, label FROM postings WHERE entry_id = {e['id']} "
            "ORDER BY line_no"))).all()
        moment = e["validated_at"] if isinstance(e["validated_at"], dt.datetime) else dt.datetime.fromisoformat(e["validated_at"])
        day = lambda v: v if isinstance(v, dt.date) else dt.date.fromisoformat(v)  # noqa: E731
        doc = entry_document(org_id=org_id, number=e["number"], journal=e["journal_code"], entry_date=day(e["entry_date"]),
                             label=e["label"], piece_ref=e["piece_ref"], piece_date=day(e["piece_date"]), site_id=e["site_id"],
                             funding_source=e["funding_source"], reverses_id=e["reverses_id"], source_key=e["source_key"],
                             grant_id=e["grant_id"], validated_at=moment, postings=[tuple(p) for p in postings])
        digest = chain_hash(prev, doc)
        await conn.execute(text("UPDATE entries SET prev_hash = :p, hash = :h WHERE id = :i"),
                           {"p": prev, "h": digest, "i": e["id"]})
        prev = digest
    last = (await conn.execute(text(f"SELECT max(number) FROM entries WHERE org_id = {org_id}"))).scalar_one()
    await conn.execute(text("UPDATE ledger_heads SET last_number = :n, last_hash = :h WHERE org_id = :o"),
                       {"n": last, "h": prev, "o": org_id})


async def _raw(engine, work) -> None:
    """Run ``work(conn)`` with every guard off (the intruder's session)."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await work(conn)
        else:
            triggers = (await conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))).all()
            await conn.execute(text("PRAGMA defer_foreign_keys = ON"))
            for name, _ in triggers:
                await conn.execute(text(f"DROP TRIGGER {name}"))
            await work(conn)
            for _, sql in triggers:
                await conn.execute(text(sql))


async def edit_an_amount_and_rehash_the_chain(engine, b: Books) -> None:
    async def work(conn):
        entry = f"(SELECT id FROM entries WHERE org_id = {b.org_id} AND number = 8)"
        await conn.execute(text(f"UPDATE postings SET amount = amount + 5000 WHERE entry_id = {entry} AND line_no = 1"))
        await conn.execute(text(f"UPDATE postings SET amount = amount - 5000 WHERE entry_id = {entry} AND line_no = 3"))
        await _rechain(conn, b.org_id, 8)
        await conn.execute(text(f"DELETE FROM ledger_seals WHERE org_id = {b.org_id} AND seq >= 3"))  # covering the tracks
    await _raw(engine, work)


async def delete_the_tail(engine, b: Books) -> None:
    async def work(conn):
        ids = f"(SELECT id FROM entries WHERE org_id = {b.org_id} AND number >= 9)"
        await conn.execute(text(f"DELETE FROM postings WHERE entry_id IN {ids}"))
        await conn.execute(text(f"DELETE FROM bar_closings WHERE org_id = {b.org_id}"))
        await conn.execute(text(f"UPDATE bar_heads SET last_closing_hash = '{GENESIS_HASH}', closed_through = NULL"))
        await conn.execute(text(f"DELETE FROM entries WHERE org_id = {b.org_id} AND number >= 9"))
        await conn.execute(text(f"DELETE FROM ledger_seals WHERE org_id = {b.org_id} AND seq >= 3"))
        await _rechain(conn, b.org_id, 9)
    await _raw(engine, work)


async def reorder_two_entries(engine, b: Books) -> None:
    async def work(conn):
        await conn.execute(text(f"UPDATE entries SET number = -7 WHERE org_id = {b.org_id} AND number = 7"))
        await conn.execute(text(f"UPDATE entries SET number = 7 WHERE org_id = {b.org_id} AND number = 8"))
        await conn.execute(text(f"UPDATE entries SET number = 8 WHERE org_id = {b.org_id} AND number = -7"))
        await _rechain(conn, b.org_id, 7)
        await conn.execute(text(f"DELETE FROM ledger_seals WHERE org_id = {b.org_id} AND seq >= 3"))
    await _raw(engine, work)


async def delete_the_last_monthly_closing(engine, b: Books) -> None:
    async def work(conn):
        first = (await conn.execute(text(f"SELECT end_date, hash FROM closings WHERE org_id = {b.org_id} ORDER BY end_date"
                                         " LIMIT 1"))).one()
        await conn.execute(text(f"DELETE FROM closings WHERE org_id = {b.org_id} AND period = '{b.closed_month}'"))
        await conn.execute(text("UPDATE ledger_heads SET closed_through = :d, last_closing_hash = :h WHERE org_id = :o"),
                           {"d": first[0], "h": first[1], "o": b.org_id})
        await conn.execute(text(f"DELETE FROM ledger_seals WHERE org_id = {b.org_id} AND seq >= 2"))
    await _raw(engine, work)


async def alter_the_frozen_labels(engine, b: Books) -> None:
    async def work(conn):
        await conn.execute(text(f"UPDATE closings SET labels = replace(labels, 'Dons manuels', 'Autres produits') "
                                f"WHERE org_id = {b.org_id}"))
    await _raw(engine, work)


async def truncate_an_append_only_table(engine, b: Books) -> None:
    async def work(conn):
        await conn.execute(text("TRUNCATE export_logs" if engine.dialect.name == "postgresql" else "DELETE FROM export_logs"))
    await _raw(engine, work)


async def delete_a_seal(engine, b: Books) -> None:
    async def work(conn):
        await conn.execute(text(f"DELETE FROM ledger_seals WHERE org_id = {b.org_id} AND seq = 3"))
    await _raw(engine, work)


async def forge_the_seals_with_another_key(engine, b: Books) -> None:
    await edit_an_amount_and_rehash_the_chain(engine, b)
    forger = Keyring.from_settings(Settings(seal_key=generate_seal_key()))
    async with transaction(session_factory(engine, keyring=forger)) as session:
        await seal(session, b.org_id, kind="month", period="forged")


async def drop_the_triggers_and_edit_a_row(engine, b: Books) -> None:
    await without_triggers(engine, [f"UPDATE entries SET label = 'Don anonyme' WHERE org_id = {b.org_id} AND number = 2"])


CASES = [
    # (attack, passes a verification without seals?, what verify says first, with the kept seals)
    (edit_an_amount_and_rehash_the_chain, True, "seal 3 (bar-day"),
    (delete_the_tail, True, "entry 9 is missing"),
    (reorder_two_entries, True, "entry 9 no longer has the hash it had"),
    (delete_the_last_monthly_closing, True, "the closing it sealed is missing or altered"),
    (alter_the_frozen_labels, False, "hash mismatch, the closing was altered"),
    (truncate_an_append_only_table, False, "1 row(s) of export_logs deleted since"),
    (delete_a_seal, True, "seal 3 (bar-day"),
    (forge_the_seals_with_another_key, False, "which this installation does not trust"),
    (drop_the_triggers_and_edit_a_row, False, "entry 2: hash mismatch"),
]


@pytest.mark.parametrize("attack, hidden_without_seals, named", CASES, ids=[c[0].__name__.replace("_", "-") for c in CASES])
async def test_tampering_is_named_by_verify_with_the_kept_seals(sessions, engine, owner_engine, attack, hidden_without_seals,
                                                                named):
    books = await make_books(sessions)
    keyring = Keyring.from_settings(Settings(seal_key=TEST_SEAL_KEY))
    kept = parse_kept(books.kept)
    async with engine.connect() as conn:
        before = await verify_org(conn, books.org_id, keyring=keyring, kept=kept)
    assert before.ok, before.problems
    assert before.counts["seals"] == 3 and before.counts["seals kept elsewhere"] == 3

    await attack(owner_engine, books)  # the database's owner, or whoever holds its file

    async with engine.connect() as conn:
        alone = await verify_org(conn, books.org_id, keyring=keyring)
        given = await verify_org(conn, books.org_id, keyring=keyring, kept=kept)
    assert alone.ok == hidden_without_seals, alone.problems
    assert not given.ok
    assert any(named in problem for problem in given.problems), given.problems
    if hidden_without_seals:  # only the seals see it: the first problem names a seal
        assert given.problems[0].startswith("seal "), given.problems


async def test_verify_on_the_command_line_names_the_first_seal_that_no_longer_holds(sessions, owner_engine, settings,
                                                                                   tmp_path):
    books = await make_books(sessions)
    kept = tmp_path / "sceaux.csv"
    kept.write_bytes(books.kept)
    await delete_the_tail(owner_engine, books)
    alone = await funding(settings, "ledger", "verify", "--org", books.siren)
    given = await funding(settings, "ledger", "verify", "--org", books.siren, "--seals", str(kept))
    lines = (alone.stdout + given.stdout).splitlines()
    assert alone.exit_code == 0 and "OK" in lines[0]
    assert given.exit_code == 1 and "BROKEN — first problem: seal 3 (bar-day" in lines[1] and "entry 9 is missing" in lines[1]


async def test_a_renamed_account_leaves_a_closed_month_exporting_the_same_bytes(sessions, engine):
    books = await make_books(sessions)
    start, _ = exports.month_bounds(books.closed_month)

    async def fec() -> bytes:
        async with sessions() as session:
            scope = await resolve_scope(session, siren=books.siren, site=None, start=start,
                                        end=exports.month_bounds(books.closed_month)[1])
        async with engine.connect() as conn:
            return await exports.build(conn, scope, "fec")

    before = await fec()
    assert b"Dons manuels" in before
    async with transaction(sessions) as session:
        await session.execute(text(f"UPDATE accounts SET label = 'Dons reçus en ligne' WHERE org_id = {books.org_id} "
                                   "AND number = '75411'"))
    assert await fec() == before
    async with engine.connect() as conn:
        assert (await verify_org(conn, books.org_id, keyring=Keyring.from_settings(Settings(seal_key=TEST_SEAL_KEY)))).ok


async def test_the_published_feed_is_what_verify_reads(client, sessions):
    books = await make_books(sessions)
    as_csv = await client.get(f"/open-data/ledger-seals.csv?org={books.siren}")
    as_json = await client.get(f"/open-data/ledger-seals.json?org={books.siren}")
    assert as_csv.status_code == 200 and as_json.status_code == 200
    assert parse_kept(as_csv.content) == parse_kept(as_json.content) == parse_kept(books.kept)
    body = json.loads(as_json.content)
    assert [s["seq"] for s in body["seals"]] == [1, 2, 3] and len(body["keys"]) == 1
    assert "@" not in as_csv.text  # nothing personal
    assert (await client.get("/open-data/ledger-seals.csv?org=999999999")).status_code == 404


def test_kept_seals_are_read_from_the_published_address_too():
    import respx

    from funding.ledger.seals import SealError, read_kept

    body = b"siren,seq,kind,period,site,entry_number,entry_hash,closing_hash,bar_seq,bar_hash,bar_closing_hash," \
           b"bar_archive_hash,counts,sealed_at,key_id,prev_hash,hash,signature,public_key\r\n" \
           b"912345675,1,month,2026-10,,3," + b"a" * 64 + b"," + b"0" * 64 + b",,,,,{},2026-11-01T00:00:00.000000Z,k," \
           + b"0" * 64 + b"," + b"b" * 64 + b",c2ln,\r\n"
    with respx.mock:
        respx.get("https://entre-lab.example/open-data/ledger-seals.csv").respond(content=body)
        respx.get("https://entre-lab.example/gone.csv").respond(status_code=404)
        [kept] = read_kept("https://entre-lab.example/open-data/ledger-seals.csv")
        assert (kept.siren, kept.seq, kept.entry_number) == ("912345675", 1, 3)
        with pytest.raises(SealError, match="404"):
            read_kept("https://entre-lab.example/gone.csv")
    with pytest.raises(SealError, match="colonnes"):
        from funding.ledger.seals import parse_kept

        parse_kept(b"a,b\n1,2\n")


def test_a_seal_whose_signature_starts_like_a_formula_reads_back_from_the_csv():
    """Observed (1 run in ~20): a base64 signature starting with "+" came back from the feed's CSV
    with the spreadsheet-safe apostrophe, and no longer matched the JSON feed."""
    import datetime as dt

    from funding.ledger.seals import KeptSeal, feed_csv

    row = {"siren": "912345675", "seq": 1, "kind": "month", "period": "2026-10", "site": None, "entry_number": 3,
           "entry_hash": "a" * 64, "closing_hash": "b" * 64, "bar_seq": None, "bar_hash": None, "bar_closing_hash": None,
           "bar_archive_hash": None, "counts": '{"export_logs":[0,0]}', "sealed_at": "2026-11-01T00:00:00.000000Z",
           "key_id": "k", "prev_hash": "0" * 64, "hash": "c" * 64, "signature": "+/sig==", "public_key": "-pub="}
    data = feed_csv([row])
    assert b"'+/sig==" in data  # a spreadsheet shows it as text
    [kept] = parse_kept(data)
    assert isinstance(kept, KeptSeal) and (kept.signature, kept.public_key) == ("+/sig==", "-pub=")
    assert kept.sealed_at == dt.datetime(2026, 11, 1)
