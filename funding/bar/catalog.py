"""Products of a site's bar: added and edited by staff, or imported from a CSV file.

A CSV import is checked whole before anything is written: one bad row and nothing
changes. A product is never deleted (sale lines refer to it): it is deactivated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from funding.bar.models import Product
from funding.bar.till import BarError
from funding.csvin import CsvError, CsvRow, read_csv
from funding.db import digits, insert_ignore, must_get, utcnow
from funding.i18n import gettext as _
from funding.money import MoneyError, parse_amount
from funding.orgs.models import Site

T = TypeVar("T")
RATES = {"5,5": 55, "10": 100, "20": 200}
MAX_PRICE = 100_000  # 1 000,00 €: a bar product above that is a typing mistake
TRUE, FALSE = {"1", "oui", "yes", "true", "vrai", "o", "x", "actif"}, {"0", "non", "no", "false", "faux", "n", "inactif"}


def parse_rate(raw) -> int:
    text = re.sub(r"\s|%", "", str(raw or "")).replace(".", ",")
    text = text[:-2] if text.endswith(",0") else text
    if text not in RATES:
        raise BarError(_("Taux de TVA invalide : %(value)s (5,5, 10 ou 20).", value=str(raw or "(vide)").strip()))
    return RATES[text]


def parse_price(raw) -> int:
    try:
        price = parse_amount(str(raw or ""), "EUR")
    except MoneyError as exc:
        raise BarError(_("Prix invalide : %(detail)s.", detail=str(exc))) from None
    if price <= 0 or price > MAX_PRICE:
        raise BarError(_("Le prix doit être compris entre 0,01 € et 1 000,00 €."))
    return price


def parse_name(raw) -> str:
    name = " ".join(str(raw or "").split())
    if not name:
        raise BarError(_("Indiquez le nom du produit."))
    if len(name) > 80:
        raise BarError(_("Nom trop long : 80 caractères au plus."))
    return name


def parse_category(raw) -> str:
    category = " ".join(str(raw or "").split())
    if len(category) > 40:
        raise BarError(_("Catégorie trop longue : 40 caractères au plus."))
    return category


def parse_active(raw) -> bool:
    text = str(raw if raw is not None else "").strip().lower()
    if text in TRUE or text == "":
        return True
    if text in FALSE:
        return False
    raise BarError(_("Valeur « actif » invalide : %(value)s (oui ou non).", value=str(raw)))


async def add_product(session: AsyncSession, site: Site, *, name, category="", price, vat_rate, active=True,
                      position: int = 0) -> Product:
    values = {"site_id": site.id, "name": parse_name(name), "category": parse_category(category),
              "price": parse_price(price), "vat_rate": parse_rate(vat_rate), "active": parse_active(active) if not
              isinstance(active, bool) else active, "currency": "EUR", "position": position, "created_at": utcnow(),
              "updated_at": utcnow()}
    new_id = await insert_ignore(session, Product, values, ["site_id", "name"])
    if new_id is None:
        raise BarError(_("« %(name)s » existe déjà dans ce bar : modifiez-le plutôt.", name=values["name"]))
    return await must_get(session, Product, new_id)


async def product_of(session: AsyncSession, site: Site, product_id) -> Product:
    product = await session.get(Product, int(product_id)) if digits(str(product_id or "")) else None
    if product is None or product.site_id != site.id:
        raise BarError(_("Produit inconnu."))
    return product


async def edit_product(session: AsyncSession, site: Site, product_id, *, name, category, price, vat_rate, active) -> Product:
    product = await product_of(session, site, product_id)
    name = parse_name(name)
    other = await session.scalar(select(Product.id).where(Product.site_id == site.id, Product.name == name,
                                                          Product.id != product.id))
    if other is not None:
        raise BarError(_("« %(name)s » existe déjà dans ce bar.", name=name))
    product.name, product.category = name, parse_category(category)
    product.price, product.vat_rate = parse_price(price), parse_rate(vat_rate)
    product.active = active if isinstance(active, bool) else parse_active(active)
    product.updated_at = utcnow()
    await session.flush()
    return product


async def products_of(session: AsyncSession, site_id: int, *, active_only: bool = False) -> list[Product]:
    query = select(Product).where(Product.site_id == site_id)
    if active_only:
        query = query.where(Product.active)
    return list((await session.scalars(query.order_by(Product.category, Product.position, Product.name))).all())


# --- CSV import ----------------------------------------------------------------------------

COLUMNS = {"nom": "name", "name": "name", "produit": "name", "catégorie": "category", "categorie": "category",
           "category": "category", "prix": "price", "price": "price", "prix ttc": "price", "tva": "vat_rate",
           "taux de tva": "vat_rate", "vat_rate": "vat_rate", "vat": "vat_rate", "actif": "active", "active": "active"}
MAX_ROWS = 1000


@dataclass(frozen=True)
class Row:
    line: int
    name: str
    category: str
    price: int
    vat_rate: int
    active: bool


def parse_csv(data: bytes) -> list[Row]:
    """Read a products file (UTF-8, comma or semicolon) through funding.csvin: every row
    checked, the first fault named with its line, its column and why."""
    try:
        parsed = read_csv(data, columns=COLUMNS, required=("name", "price", "vat_rate"), numeric=("price", "vat_rate"),
                          unique=("name",), max_rows=MAX_ROWS, expected="nom;categorie;prix;tva;actif")
        return [Row(r.line, _cell(r, "name", parse_name), _cell(r, "category", parse_category),
                    _cell(r, "price", parse_price), _cell(r, "vat_rate", parse_rate), _cell(r, "active", parse_active))
                for r in parsed]
    except CsvError as exc:
        raise BarError(str(exc)) from None


def _cell(row: CsvRow, column: str, parse: Callable[[str], T]) -> T:
    try:
        return parse(row.get(column))
    except BarError as exc:
        raise row.error(column, str(exc)) from None


async def import_rows(session: AsyncSession, site: Site, rows: list[Row]) -> tuple[int, int]:
    """Add the new products and update those of the same name. Returns (added, updated)."""
    existing = {p.name.lower(): p for p in await products_of(session, site.id)}
    added = updated = 0
    for n, row in enumerate(rows):
        product = existing.get(row.name.lower())
        if product is None:
            session.add(Product(site_id=site.id, name=row.name, category=row.category, price=row.price, currency="EUR",
                                vat_rate=row.vat_rate, active=row.active, position=n))
            added += 1
        elif (product.category, product.price, product.vat_rate, product.active) != (row.category, row.price, row.vat_rate,
                                                                                      row.active):
            product.category, product.price, product.vat_rate, product.active = row.category, row.price, row.vat_rate, row.active
            product.updated_at = utcnow()
            updated += 1
    await session.flush()
    return added, updated
