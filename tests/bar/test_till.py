"""The till: lines recorded at once, refusals with clear messages, cancellations, the chain."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from funding.bar.catalog import BarError, add_product, edit_product, import_rows, parse_csv, products_of
from funding.bar.models import SaleLine, TillHead
from funding.bar.till import cancel, open_ticket, ring_up, tab_balance
from funding.db import transaction
from funding.orgs.models import Site
from tests.support.bar import LIMIT, MENU, PRICES, make_bar, sell, site_of


async def test_a_sale_is_recorded_at_once_numbered_and_chained(sessions, world):
    bar = await make_bar(sessions, world)
    first = await sell(sessions, bar, "Café")
    second = await sell(sessions, bar, "Bière locale", quantity=2)
    assert (first.seq, second.seq) == (1, 2)
    assert second.prev_hash == first.hash and len(second.hash) == 64
    assert (second.unit_price, second.quantity, second.amount, second.vat_rate) == (450, 2, 900, 200)
    async with sessions() as session:
        head = await session.get(TillHead, world.site_id)
        assert (head.last_seq, head.last_hash) == (2, second.hash)
        assert await tab_balance(session, world.site_id, bar.members[0]) == 150 + 900


@pytest.mark.parametrize("product, quantity, message", [
    ("unknown", 1, "Produit inconnu"),
    ("Café", -1, "Quantité négative refusée"),
    ("Café", 0, "Quantité nulle"),
    ("Café", "deux", "Quantité invalide"),
    ("Café", 100, "Quantité trop grande"),
])
async def test_bad_sales_are_refused_with_a_clear_message_and_record_nothing(sessions, world, product, quantity, message):
    bar = await make_bar(sessions, world)
    bar.products["unknown"] = 999_999
    with pytest.raises(BarError, match=message):
        await sell(sessions, bar, product, quantity=quantity)
    async with sessions() as session:
        assert (await session.scalars(select(SaleLine.id))).all() == []


async def test_an_inactive_product_is_refused(sessions, world):
    bar = await make_bar(sessions, world)
    async with transaction(sessions) as session:
        site = await site_of(session, world)
        await edit_product(session, site, bar.products["Thé"], name="Thé", category="Boissons chaudes", price="2,00",
                           vat_rate="10", active=False)
    with pytest.raises(BarError, match="« Thé » n'est plus en vente"):
        await sell(sessions, bar, "Thé")


async def test_a_product_of_another_site_is_unknown_here(sessions, world):
    bar = await make_bar(sessions, world)
    with pytest.raises(BarError, match="Produit inconnu à Courpière"):
        await sell(sessions, bar, "Café", site_id=world.other_site_id)


async def test_a_sale_over_the_tab_limit_is_refused_with_the_figures(sessions, world):
    bar = await make_bar(sessions, world)
    for _ in range(9):
        await sell(sessions, bar, "Sandwich")  # 49,50 €
    with pytest.raises(BarError) as refused:
        await sell(sessions, bar, "Café")
    message = str(refused.value)
    assert "Plafond d'ardoise atteint" in message and "49,50" in message and "50,00" in message
    # Another member's tab is theirs alone; a walk-in pays on the spot, no limit.
    await sell(sessions, bar, "Café", member=bar.members[1])
    async with transaction(sessions) as session:
        ticket = await open_ticket(session, await site_of(session, world))
    await sell(sessions, bar, "Café", ticket=ticket.id)
    async with sessions() as session:
        assert await tab_balance(session, world.site_id, bar.members[0]) == 9 * 550


async def test_the_tab_limit_holds_per_member_across_the_organisations_sites(sessions, world):
    """86,50 € open across Thiers and Courpière against a 50 € limit: the sale that would pass
    it is refused at the second site, with the limit message and the member's whole tab."""
    bar = await make_bar(sessions, world)
    async with transaction(sessions) as session:
        other = await session.get(Site, world.other_site_id)
        for name, category, price, rate in MENU:
            bar.products[f"{name}@other"] = (await add_product(session, other, name=name, category=category, price=price,
                                                               vat_rate=rate)).id
    for _ in range(8):
        await sell(sessions, bar, "Sandwich")  # 44,00 € at Thiers
    bar.products["Sandwich"] = bar.products["Sandwich@other"]
    bar.products["Café"] = bar.products["Café@other"]
    with pytest.raises(BarError) as refused:
        await sell(sessions, bar, "Sandwich", site_id=world.other_site_id, quantity=7)  # 38,50 € more: 82,50 €
    message = str(refused.value)
    assert "Plafond d'ardoise atteint" in message and "44,00" in message and "50,00" in message
    await sell(sessions, bar, "Café", site_id=world.other_site_id)  # 45,50 €: still under the limit
    async with sessions() as session:
        assert await tab_balance(session, world.other_site_id, bar.members[0]) == 150
        assert await tab_balance(session, world.site_id, bar.members[0]) == 8 * 550


async def test_only_members_hold_tabs(sessions, world):
    bar = await make_bar(sessions, world)
    with pytest.raises(BarError, match="Membre inconnu"):
        await sell(sessions, bar, "Café", member=world.users["staff"])


async def test_a_mistake_is_corrected_by_a_cancelling_line_with_a_reason(sessions, world):
    bar = await make_bar(sessions, world)
    line = await sell(sessions, bar, "Bière locale")
    async with transaction(sessions) as session:
        site = await site_of(session, world)
        with pytest.raises(BarError, match="Indiquez le motif"):
            await cancel(session, site, line_id=line.id, reason="  ")
    async with transaction(sessions) as session:
        site = await site_of(session, world)
        undo = await cancel(session, site, line_id=line.id, reason="Erreur de touche : c'était un jus", recorded_by="Louis")
    assert (undo.kind, undo.cancels_id, undo.quantity, undo.amount, undo.seq) == ("cancel", line.id, -1, -450, 2)
    for target, message in ((line.id, "déjà annulée"), (undo.id, "Une annulation ne s'annule pas")):
        async with transaction(sessions) as session:
            with pytest.raises(BarError, match=message):
                await cancel(session, await site_of(session, world), line_id=target, reason="encore")
    async with sessions() as session:
        assert await tab_balance(session, world.site_id, bar.members[0]) == 0


async def test_the_database_refuses_to_change_or_delete_a_sale_line_even_as_the_owner(sessions, world, owner_engine):
    bar = await make_bar(sessions, world)
    line = await sell(sessions, bar, "Café")
    for sql in (f"UPDATE bar_sale_lines SET amount = 1, unit_price = 1 WHERE id = {line.id}",
                f"DELETE FROM bar_sale_lines WHERE id = {line.id}",
                "UPDATE bar_heads SET last_seq = 7"):
        with pytest.raises(DBAPIError, match="bar:"):
            async with owner_engine.begin() as conn:
                await conn.execute(text(sql))


async def test_the_database_refuses_a_line_out_of_the_chain(sessions, world):
    bar = await make_bar(sessions, world)
    line = await sell(sessions, bar, "Café")
    async with sessions() as session:
        forged = SaleLine(**{col.key: getattr(line, col.key) for col in SaleLine.__table__.columns if col.key != "id"})
        forged.seq = 5
        session.add(forged)
        with pytest.raises(DBAPIError, match="gap-free"):
            await session.flush()


async def test_products_csv_import_is_checked_whole(sessions, world):
    await make_bar(sessions, world)
    good = ("nom;categorie;prix;tva;actif\nCafé;Boissons chaudes;1,60;10;oui\n"
            "Part de tarte aux myrtilles;Pâtisseries;3,20;10;oui\nLimonade artisanale;Boissons fraîches;2,80;5,5;\n").encode()
    async with transaction(sessions) as session:
        site = await site_of(session, world)
        assert await import_rows(session, site, parse_csv(good)) == (2, 1)
    async with sessions() as session:
        products = {p.name: p for p in await products_of(session, world.site_id)}
    assert products["Café"].price == 160 and products["Limonade artisanale"].vat_rate == 55
    for data, message in [
        (b"nom;prix\nCafe;1\n", "ligne 1, colonne vat_rate : colonne manquante"),
        ("nom;prix;tva\nCafé;1,50;19,6\n".encode(), "ligne 2, colonne tva : Taux de TVA invalide : 19,6"),
        ("nom;prix;tva\nThé;-2;10\n".encode(), "ligne 2, colonne prix : Prix invalide"),
        ("nom;prix;tva\nThé;2;10\nthé;2;10\n".encode(), "ligne 3, colonne nom : même ligne que la ligne 2"),
        (b"\xff\xfe", "ligne 1, colonne n°1 : le fichier n'est pas en UTF-8"),
    ]:
        with pytest.raises(BarError, match=message):
            parse_csv(data)
    assert PRICES["Café"] == 150


async def test_a_sale_after_the_closing_stays_on_its_day_and_is_closed_again(sessions, world):
    """Issue 17: a sale rung after the day's closing used to open tomorrow; it stays on its
    Paris day, and closing that day again covers it."""
    from funding.bar.closings import close_day

    bar = await make_bar(sessions, world)
    await sell(sessions, bar, "Café")
    async with transaction(sessions) as session:
        closings = await close_day(session, await site_of(session, world), closed_by="Louis")
    late = await sell(sessions, bar, "Thé")
    assert late.day == closings[-1].end_date
    async with transaction(sessions) as session:
        [again] = await close_day(session, await site_of(session, world), closed_by="Louis")
    assert (again.period, again.line_count, again.first_seq) == (f"{late.day.isoformat()}/2", 1, late.seq)


async def test_limit_counts_only_the_open_tab(sessions, world):
    bar = await make_bar(sessions, world)
    await sell(sessions, bar, "Sandwich", quantity=9)
    with pytest.raises(BarError):
        await sell(sessions, bar, "Café")
    async with transaction(sessions) as session:
        site = await site_of(session, world)
        await ring_up(session, site, product_id=bar.products["Café"], member_id=bar.members[0], limit=LIMIT * 2)
