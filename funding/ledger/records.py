"""Money that never touches Stripe: grants, patronage, sponsoring, bank transfers; what grants
pay for: expenses and fixed assets; and what is given without money, the contributions in kind
(volunteering hours valued, goods lent or given), posted in classe 8 (86x debit, 87x credit:
ANC 2018-06) and shown below the annual result.

A grant is recorded with its nature (funding.ledger.models.GrantNature), which says how it is
booked: an operating, multi-year or restricted grant credits 741 when notified (the year-end
entries of funding.ledger.yearend then defer or dedicate what belongs to later years), an
investment grant credits 131. An expense or an asset bought may name the grant it spends
(``reference``): that is what the year-ends count as spent on a restricted grant, and what
releases an investment grant in step with the asset's depreciation.

Staff record them from the command line (one, or a CSV file of them) and from the
admin page. A batch is checked whole before anything is written: one bad line and
nothing is recorded. Recording the same line twice posts it once (its content is its key).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from funding.clock import paris_today
from funding.csvin import CsvError, read_csv
from funding.db import must_get
from funding.errors import FundingError
from funding.i18n import N_
from funding.ledger.chart import DEPRECIATION_ACCOUNTS, check_account_number, vat_account
from funding.ledger.models import FUNDING_SOURCES, Entry, FixedAsset, FundingSource, Grant, GrantNature, Posting
from funding.ledger.service import EntryDraft, LedgerError, Posted, check_draft, check_references, credit, debit, post
from funding.money import MAX_AMOUNT, MoneyError, check_currency, format_plain, parse_amount
from funding.orgs.models import Organisation, Site
from funding.orgs.service import OrgError, check_siret


class RecordKind(StrEnum):
    """What a recorded operation is: the `kind` column of a CSV line, the choice of the form."""

    GRANT_NOTIFIED = "grant-notified"
    GRANT_PAID = "grant-paid"
    PATRONAGE = "patronage"
    SPONSORING = "sponsoring"
    TRANSFER = "transfer"
    VOLUNTEERING = "volunteering"
    GOODS_LENT = "goods-lent"
    GOODS_GIVEN = "goods-given"
    EXPENSE = "expense"
    ASSET = "asset"


KINDS = {
    RecordKind.GRANT_NOTIFIED: N_("Subvention notifiée"),
    RecordKind.GRANT_PAID: N_("Subvention versée"),
    RecordKind.PATRONAGE: N_("Mécénat (virement)"),
    RecordKind.SPONSORING: N_("Parrainage (virement)"),
    RecordKind.TRANSFER: N_("Autre virement"),
    RecordKind.VOLUNTEERING: N_("Bénévolat valorisé (heures × valeur horaire)"),
    RecordKind.GOODS_LENT: N_("Biens ou services mis à disposition gratuitement"),
    RecordKind.GOODS_GIVEN: N_("Dons en nature"),
    RecordKind.EXPENSE: N_("Dépense payée par virement"),
    RecordKind.ASSET: N_("Achat d'une immobilisation"),
}
NATURES = {
    GrantNature.OPERATING: N_("Subvention de fonctionnement de l'exercice"),
    GrantNature.MULTI_YEAR: N_("Subvention pluriannuelle"),
    GrantNature.RESTRICTED: N_("Subvention affectée (fonds dédiés)"),
    GrantNature.INVESTMENT: N_("Subvention d'investissement"),
}
# Contributions in kind: (debited use, credited source) in classe 8.
IN_KIND = {
    RecordKind.VOLUNTEERING: ("864", "870"),
    RecordKind.GOODS_LENT: ("861", "871"),
    RecordKind.GOODS_GIVEN: ("860", "875"),
}
IN_KIND_LABELS = {
    RecordKind.VOLUNTEERING: "Bénévolat",
    RecordKind.GOODS_LENT: "Mise à disposition gratuite",
    RecordKind.GOODS_GIVEN: "Don en nature",
}
MAX_HOURS = Decimal(10_000)  # in one line: more is a typing slip (a year of one full-time person is ~1 607 h)
CSV_COLUMNS = (
    "kind", "site", "date", "amount", "currency", "label", "piece_ref", "funder", "funder_siret",
    "reference", "object", "debit", "credit", "source", "vat_rate", "hours", "hourly_value", "nature", "years", "life",
)
MAX_YEARS = 10
VAT_ACCOUNTS = {"20": vat_account(200), "10": vat_account(100), "5.5": vat_account(55)}
VAT_PER_MILLE = {"20": 200, "10": 100, "5.5": 55}


class RecordError(FundingError):
    """A record refused; ``field`` names the column (of Record, as a CSV header spells it) at fault."""

    def __init__(self, message: str = "", *, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass
class Record:
    kind: str
    date: str
    amount: str
    site: str = ""
    currency: str = "EUR"
    label: str = ""
    piece_ref: str = ""
    funder: str = ""
    funder_siret: str = ""
    reference: str = ""
    object: str = ""
    debit: str = ""
    credit: str = ""
    source: str = ""
    vat_rate: str = ""
    hours: str = ""
    hourly_value: str = ""
    nature: str = ""
    years: str = ""
    life: str = ""
    line: int = 0  # in its CSV file (0: typed in)

    @classmethod
    def of(cls, fields: Mapping[str, str], line: int = 0) -> Record:
        """A record from its columns' texts (a form, a CSV row, command-line options)."""
        values: dict[str, Any] = {"kind": "", "date": "", "amount": "", **{k: v for k, v in fields.items() if k in CSV_COLUMNS}}
        return cls(**values, line=line)

    def key(self) -> str:
        parts = [self.kind, self.site, self.date, self.amount, self.currency, self.label, self.piece_ref,
                 self.funder, self.reference, self.debit, self.credit, self.source, self.vat_rate]
        if self.hours.strip() or self.hourly_value.strip():  # only then: the keys of the other kinds stay as they were
            parts += [self.hours, self.hourly_value]
        # The later fields join the key only when given: a line recorded before them keeps its key.
        parts += [f"{name}={value.strip()}" for name, value in
                  (("nature", self.nature), ("years", self.years), ("life", self.life)) if (value or "").strip()]
        return "manual:" + hashlib.sha256("\x1f".join(p.strip() for p in parts).encode()).hexdigest()[:40]


@dataclass
class RecordOutcome:
    record: Record
    entry: Posted


def _date(text: str) -> dt.date:
    text = (text or "").strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise RecordError(f"date invalide : {text[:20] or '(vide)'} (AAAA-MM-JJ ou JJ/MM/AAAA)", field="date")


def _required(value: str, what: str, field: str | None = None) -> str:
    if not (value or "").strip():
        raise RecordError(f"{what} manquant", field=field)
    return value.strip()


async def _site(session: AsyncSession, slug: str) -> Site:
    site = await session.scalar(select(Site).where(Site.slug == (slug or "").strip().lower()))
    if site is None:
        raise RecordError(f"site inconnu : {slug[:40] or '(vide)'}", field="site")
    return site


async def _grant_received(session: AsyncSession, grant: Grant) -> int:
    """What has been received on a grant so far: the credits of 441 in its entries."""
    value = await session.scalar(
        select(func.coalesce(func.sum(-Posting.amount), 0))
        .join(Entry, Entry.id == Posting.entry_id)
        .where(Entry.grant_id == grant.id, Entry.number.is_not(None), Posting.account_number == "441", Posting.amount < 0)
    )
    return int(value or 0)


def _whole(text: str, what: str, low: int, high: int, field: str) -> int:
    raw = (text or "").strip()
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4):
        raise RecordError(f"{what} invalide : {raw[:20] or '(vide)'} (un nombre entier d'années)", field=field)
    value = int(raw)
    if not low <= value <= high:
        raise RecordError(f"{what} invalide : {value} (de {low} à {high} ans)", field=field)
    return value


def _nature(rec: Record) -> tuple[GrantNature, int]:
    """The grant's nature and the fiscal years it covers (1 unless multi-year)."""
    text = (rec.nature or GrantNature.OPERATING).strip().lower()
    if text not in NATURES:
        raise RecordError(f"nature de subvention inconnue : {rec.nature[:20]} ({', '.join(NATURES)})", field="nature")
    nature = GrantNature(text)
    if nature == GrantNature.MULTI_YEAR:
        return nature, _whole(rec.years, "nombre d'années de la subvention pluriannuelle", 2, MAX_YEARS, "years")
    if (rec.years or "").strip() not in ("", "1"):
        raise RecordError("seule une subvention pluriannuelle couvre plusieurs années (nature multi-year)", field="years")
    return nature, 1


async def _grant_of(session: AsyncSession, org_id: int, reference: str, cur: str) -> Grant | None:
    """The grant an expense or an asset spends (``reference``), if one is named."""
    reference = (reference or "").strip()
    if not reference:
        return None
    grant = await session.scalar(select(Grant).where(Grant.org_id == org_id, Grant.reference == reference))
    if grant is None:
        raise RecordError(f"subvention inconnue : {reference[:40]}", field="reference")
    if grant.currency != cur:
        raise RecordError(f"la subvention {reference} est en {grant.currency}", field="currency")
    return grant


async def build(session: AsyncSession, rec: Record, *, created_by: str, pending_paid: dict[int, int]) -> EntryDraft:
    """Check one record and turn it into a draft entry (a grant row is flushed if new)."""
    if rec.kind not in KINDS:
        raise RecordError(f"type d'opération inconnu : {rec.kind[:40] or '(vide)'} ({', '.join(KINDS)})", field="kind")
    day = _date(rec.date)
    try:
        cur = check_currency(rec.currency or "EUR")
    except MoneyError as exc:
        raise RecordError(str(exc), field="currency") from None
    if rec.kind == RecordKind.VOLUNTEERING:
        amount = _volunteering_value(rec, cur)
    else:
        try:
            amount = parse_amount(rec.amount, cur)
        except MoneyError as exc:
            raise RecordError(str(exc), field="amount") from None
        if amount <= 0:
            raise RecordError("le montant doit être positif", field="amount")
    key = rec.key()

    if rec.kind == RecordKind.GRANT_PAID:
        reference = _required(rec.reference, "référence de la subvention", "reference")
        grant = await session.scalar(select(Grant).where(Grant.reference == reference))
        if grant is None:
            raise RecordError(f"subvention inconnue : {reference[:40]} (enregistrez d'abord sa notification)",
                              field="reference")
        if cur != grant.currency:
            raise RecordError(f"la subvention {reference} est en {grant.currency}", field="currency")
        already = await session.scalar(select(Entry.id).where(Entry.source_key == key))
        if not already:
            remaining = grant.amount - await _grant_received(session, grant) - pending_paid.get(grant.id, 0)
            if amount > remaining:
                raise RecordError(f"le versement dépasse ce qui reste à recevoir de la subvention {reference}", field="amount")
            pending_paid[grant.id] = pending_paid.get(grant.id, 0) + amount
        return EntryDraft(
            org_id=grant.org_id, site_id=grant.site_id, journal="BQ", entry_date=day,
            label=(rec.label or f"Versement subvention {grant.funder_name}")[:200],
            piece_ref=(rec.piece_ref or reference)[:100], funding_source=FundingSource.PUBLIC,
            lines=[debit("512", amount, cur), credit("441", amount, cur)], source_key=key, grant_id=grant.id,
            created_by=created_by,
        )

    site = await _site(session, rec.site)
    org = await must_get(session, Organisation, site.org_id)
    if rec.kind == RecordKind.GRANT_NOTIFIED:
        funder = _required(rec.funder, "nom du financeur", "funder")
        reference = _required(rec.reference, "référence de la décision ou convention", "reference")
        obj = _required(rec.object, "objet de la subvention", "object")[:256]
        nature, years = _nature(rec)
        # The SCDL open data names the funder by its SIRET: a new grant cannot go without it.
        try:
            siret = check_siret(_required(rec.funder_siret, "SIRET du financeur", "funder_siret"))
        except OrgError as exc:
            raise RecordError(str(exc), field="funder_siret") from None
        grant = await session.scalar(select(Grant).where(Grant.org_id == org.id, Grant.reference == reference))
        if grant is None:
            grant = Grant(
                org_id=org.id, site_id=site.id, funder_name=funder, funder_siret=siret, reference=reference,
                convention_date=day, object=obj, amount=amount, currency=cur, nature=nature, years=years,
                conditions="échelonné" if nature == GrantNature.MULTI_YEAR else "unique",
            )
            session.add(grant)
            await session.flush()
        elif (grant.amount, grant.funder_name, grant.site_id, grant.nature, grant.years) != (amount, funder, site.id,
                                                                                              nature, years):
            raise RecordError(f"une autre subvention porte déjà la référence {reference}", field="reference")
        income = "131" if nature == GrantNature.INVESTMENT else "741"
        return EntryDraft(
            org_id=org.id, site_id=site.id, journal="OD", entry_date=day,
            label=(rec.label or f"Subvention {funder} : {obj}")[:200], piece_ref=reference[:100],
            funding_source=FundingSource.PUBLIC, lines=[debit("441", amount, cur), credit(income, amount, cur)],
            source_key=key, grant_id=grant.id, created_by=created_by,
        )
    if rec.kind == RecordKind.EXPENSE:
        try:
            account = check_account_number(rec.debit)
        except ValueError as exc:
            raise RecordError(str(exc), field="debit") from None
        if not account.startswith("6") or account.startswith("68"):
            raise RecordError(f"une dépense se passe en charge (compte 60 à 67) : {account}", field="debit")
        grant = await _grant_of(session, org.id, rec.reference, cur)
        return EntryDraft(
            org_id=org.id, site_id=site.id, journal="BQ", entry_date=day,
            label=_required(rec.label, "libellé", "label")[:200],
            piece_ref=_required(rec.piece_ref, "référence de pièce", "piece_ref")[:100],
            funding_source=FundingSource.PUBLIC if grant else FundingSource.SELF,
            lines=[debit(account, amount, cur), credit("512", amount, cur)], source_key=key,
            grant_id=grant.id if grant else None, created_by=created_by,
        )
    if rec.kind == RecordKind.ASSET:
        account = (rec.debit or "").strip()
        if account not in DEPRECIATION_ACCOUNTS:
            raise RecordError(f"compte d'immobilisation invalide : {account[:20] or '(vide)'} "
                              f"({', '.join(DEPRECIATION_ACCOUNTS)})", field="debit")
        life = _whole(rec.life, "durée d'amortissement", 1, 50, "life")
        label = _required(rec.label, "libellé", "label")[:200]
        grant = await _grant_of(session, org.id, rec.reference, cur)
        if grant is not None and grant.nature != GrantNature.INVESTMENT:
            raise RecordError(f"la subvention {grant.reference} n'est pas une subvention d'investissement", field="reference")
        if not await session.scalar(select(FixedAsset.id).where(FixedAsset.org_id == org.id, FixedAsset.source_key == key)):
            session.add(FixedAsset(org_id=org.id, site_id=site.id, label=label, account_number=account, acquired_on=day,
                                   cost=amount, currency=cur, useful_life=life, grant_id=grant.id if grant else None,
                                   source_key=key))
            await session.flush()
        return EntryDraft(
            org_id=org.id, site_id=site.id, journal="BQ", entry_date=day, label=label,
            piece_ref=_required(rec.piece_ref, "référence de pièce", "piece_ref")[:100],
            funding_source=FundingSource.PUBLIC if grant else FundingSource.SELF,
            lines=[debit(account, amount, cur), credit("512", amount, cur)], source_key=key,
            grant_id=grant.id if grant else None, created_by=created_by,
        )
    if rec.kind == RecordKind.PATRONAGE:
        donor = _required(rec.funder, "nom du mécène", "funder")
        return EntryDraft(
            org_id=org.id, site_id=site.id, journal="BQ", entry_date=day,
            label=(rec.label or f"Mécénat {donor}")[:200], piece_ref=_required(rec.piece_ref, "référence de pièce", "piece_ref")[:100],
            funding_source=FundingSource.PRIVATE, lines=[debit("512", amount, cur), credit("7542", amount, cur)],
            source_key=key, created_by=created_by,
        )
    if rec.kind == RecordKind.SPONSORING:
        sponsor = _required(rec.funder, "nom du partenaire", "funder")
        rate = (rec.vat_rate or ("20" if org.vat_liable else "0")).strip().replace(",", ".").rstrip("%").strip()
        if rate not in VAT_ACCOUNTS and rate != "0":
            raise RecordError(f"taux de TVA invalide : {rec.vat_rate[:20]} (20, 10, 5,5 ou 0)", field="vat_rate")
        lines = [debit("512", amount, cur)]
        if rate == "0":
            lines.append(credit("7063", amount, cur))
        else:
            # amount is TTC; base = TTC / (1 + rate), rounded half up to the cent, VAT is the rest.
            per_mille = VAT_PER_MILLE[rate]
            base = (amount * 1000 * 2 + (1000 + per_mille)) // (2 * (1000 + per_mille))
            lines += [credit("7063", base, cur), credit(VAT_ACCOUNTS[rate], amount - base, cur)]
        return EntryDraft(
            org_id=org.id, site_id=site.id, journal="BQ", entry_date=day,
            label=(rec.label or f"Parrainage {sponsor}")[:200], piece_ref=_required(rec.piece_ref, "référence de pièce", "piece_ref")[:100],
            funding_source=FundingSource.PRIVATE, lines=lines, source_key=key, created_by=created_by,
        )
    if rec.kind in IN_KIND:
        return _in_kind(rec, org, site, day, amount, cur, key, created_by)
    # transfer
    try:
        debit_acc = check_account_number(rec.debit)
    except ValueError as exc:
        raise RecordError(str(exc), field="debit") from None
    try:
        credit_acc = check_account_number(rec.credit)
    except ValueError as exc:
        raise RecordError(str(exc), field="credit") from None
    source = (rec.source or "").strip()
    if source not in FUNDING_SOURCES:
        raise RecordError(f"origine des fonds invalide : {source[:20] or '(vide)'} ({', '.join(FUNDING_SOURCES)})",
                          field="source")
    return EntryDraft(
        org_id=org.id, site_id=site.id, journal="BQ", entry_date=day,
        label=_required(rec.label, "libellé", "label")[:200],
        piece_ref=_required(rec.piece_ref, "référence de pièce", "piece_ref")[:100],
        funding_source=source, lines=[debit(debit_acc, amount, cur), credit(credit_acc, amount, cur)],
        source_key=key, created_by=created_by,
    )


def _hours(text: str) -> Decimal:
    raw = (text or "").strip().replace("\u202f", "").replace("\xa0", "").replace(" ", "").replace(",", ".")
    if raw.lower().endswith("h"):
        raw = raw[:-1]
    try:
        hours = Decimal(raw)
    except InvalidOperation:
        raise RecordError(f"nombre d'heures invalide : {text.strip()[:20] or '(vide)'} (par exemple 12,5)", field="hours") from None
    if not hours.is_finite() or hours <= 0:
        raise RecordError(f"nombre d'heures invalide : {text.strip()[:20] or '(vide)'} (un nombre positif, par exemple 12,5)",
                          field="hours")
    if hours > MAX_HOURS or hours != hours.quantize(Decimal("0.01")):
        raise RecordError(f"nombre d'heures invalide : {text.strip()[:20]} (au plus {MAX_HOURS} heures, au centième)",
                          field="hours")
    return hours


def _volunteering_value(rec: Record, currency: str) -> int:
    """Hours × hourly value, rounded half up to the minor unit; a stated amount must be that product."""
    hours = _hours(_required(rec.hours, "nombre d'heures", "hours"))
    try:
        rate = parse_amount(_required(rec.hourly_value, "valeur horaire", "hourly_value"), currency)
    except MoneyError as exc:
        raise RecordError(f"valeur horaire : {exc}", field="hourly_value") from None
    if rate <= 0:
        raise RecordError("la valeur horaire doit être positive", field="hourly_value")
    amount = int((hours * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if amount > MAX_AMOUNT:
        raise RecordError(f"valeur trop grande : au plus {format_plain(MAX_AMOUNT, currency)}", field="hourly_value")
    if rec.amount.strip():
        try:
            stated = parse_amount(rec.amount, currency)
        except MoneyError as exc:
            raise RecordError(str(exc), field="amount") from None
        if stated != amount:
            raise RecordError(field="amount", message=f"le montant ne correspond pas aux heures × valeur horaire ({format_plain(amount, currency)})")
    return amount


def _in_kind(rec: Record, org: Organisation, site: Site, day: dt.date, amount: int, cur: str, key: str,
             created_by: str) -> EntryDraft:
    """A contribution in kind: no money moves; its value goes to 86x (use) and 87x (source)."""
    kind = RecordKind(rec.kind)
    use, source = IN_KIND[kind]
    what = _required(rec.label, "description de la contribution", "label")
    who = rec.funder.strip()
    label = f"{IN_KIND_LABELS[kind]} : {what}" + (f" ({who})" if who else "")
    return EntryDraft(
        org_id=org.id, site_id=site.id, journal="OD", entry_date=day, label=label[:200],
        piece_ref=_required(rec.piece_ref, "référence de pièce (relevé d'heures, attestation…)", "piece_ref")[:100],
        funding_source=FundingSource.PRIVATE, lines=[debit(use, amount, cur), credit(source, amount, cur)],
        source_key=key, created_by=created_by,
    )


def _located(rec: Record, exc: RecordError | LedgerError, many: int) -> RecordError:
    """The refusal of one record, naming its line and column when it came from a file."""
    field = getattr(exc, "field", None)
    if rec.line and field:
        return RecordError(str(CsvError(str(exc), line=rec.line, column=field)), field=field)
    if rec.line:
        return RecordError(str(CsvError(str(exc), line=rec.line)), field=field)
    return RecordError(f"ligne {many} : {exc}" if many else str(exc), field=field)


async def record_many(session: AsyncSession, records: list[Record], *, created_by: str) -> list[RecordOutcome]:
    """Check every record, then post them together. Any error raises and writes nothing
    (the caller's transaction is rolled back); the message names the faulty line (and column)."""
    drafts: list[EntryDraft] = []
    pending: dict[int, int] = {}
    today = paris_today()
    for n, rec in enumerate(records, start=1):
        try:
            draft = await build(session, rec, created_by=created_by, pending_paid=pending)
            if draft.entry_date > today:
                raise RecordError(f"date future refusée : {draft.entry_date.isoformat()}", field="date")
            check_draft(draft, today=today)
            try:
                await check_references(session, draft.org_id, [draft])
            except LedgerError as exc:
                named = [f for f in ("debit", "credit") if getattr(rec, f).strip() and getattr(rec, f).strip() in str(exc)]
                raise RecordError(str(exc), field=named[0] if named else None) from None
        except (RecordError, LedgerError) as exc:
            raise _located(rec, exc, n if len(records) > 1 else 0) from None
        drafts.append(draft)
    try:
        result = await post(session, drafts)
    except LedgerError as exc:
        raise RecordError(str(exc)) from None
    by_key = {e.source_key: e for e in result.entries}
    return [RecordOutcome(rec, by_key[d.source_key]) for rec, d in zip(records, drafts, strict=True)]  # one draft per record


def parse_csv(data: bytes | str) -> list[Record]:
    """Read a CSV of records (comma, semicolon or tab separated, UTF-8, header line) through
    funding.csvin: a fault names its line, its column and why; the same line twice is refused."""
    try:
        rows = read_csv(data, columns={c: c for c in CSV_COLUMNS}, required=("kind", "date"), any_of=("amount", "hours"),
                        delimiters=",;\t", numeric=("amount", "hours", "hourly_value", "vat_rate", "years", "life"),
                        unique=CSV_COLUMNS, expected=",".join(CSV_COLUMNS[:4]) + ",…")
    except CsvError as exc:
        raise RecordError(str(exc), field=exc.column) from None
    return [Record.of(row.cells, row.line) for row in rows]
