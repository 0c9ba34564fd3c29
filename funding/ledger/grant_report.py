"""The financial report of a granted action (compte rendu financier, cerfa 15059): its budget
(*prévisionnel*, the grant's budget lines) against what the books show (*réalisé*), by the
form's categories, with the grant received and the annex (object, convention).

**Where the réalisé comes from.** Validated entries of the period, by the first two digits of
their accounts (charges 60–69 and 86 in debit, produits 70–79 and 87 in credit), from one of
two rules, said in the report:

- ``grant``: the entries tagged with the grant (``grant_id``), the rule whenever a charge of
  the period is tagged with it;
- ``site``: otherwise, expenses not being tagged by grant, every entry of the grant's site in
  the period (the action being the site's activity).

``basis`` forces one. Subventions (74) are shown per funder: the grant of the entry, else
"autres financeurs". The grant received is the credits of 441 on its entries (as the
funding-mix report counts it), in the period and since the convention.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from funding import csvout
from funding.clock import paris_today
from funding.csvin import CsvError, read_csv
from funding.errors import FundingError
from funding.ledger.models import Entry, Grant, GrantBudgetLine, Posting
from funding.ledger.service import fiscal_year_bounds, validated_entries
from funding.money import format_plain, parse_amount
from funding.orgs.models import Organisation, Site

CHARGES = {
    "60": "Achats", "61": "Services extérieurs", "62": "Autres services extérieurs", "63": "Impôts et taxes",
    "64": "Charges de personnel", "65": "Autres charges de gestion courante", "66": "Charges financières",
    "67": "Charges exceptionnelles", "68": "Dotations aux amortissements et provisions",
    "69": "Impôts sur les bénéfices", "86": "Emplois des contributions volontaires en nature",
}
PRODUITS = {
    "70": "Ventes de produits finis, prestations de services, marchandises", "71": "Production stockée",
    "72": "Production immobilisée", "73": "Dotations et produits de tarification", "74": "Subventions d'exploitation",
    "75": "Autres produits de gestion courante (dont cotisations, dons manuels et legs)", "76": "Produits financiers",
    "77": "Produits exceptionnels", "78": "Reprises sur amortissements et provisions", "79": "Transferts de charges",
    "87": "Contributions volontaires en nature",
}
CATEGORIES = {**CHARGES, **PRODUITS}
SUBSIDIES = "74"
OTHER_FUNDERS = "autres financeurs"
BASES = ("auto", "grant", "site")
BASIS_TEXT = {
    "grant": "écritures validées portant la subvention (étiquette analytique « subvention »)",
    "site": "aucune charge de la période ne porte la subvention : toutes les écritures validées du lieu de la "
            "subvention sur la période",
}
CSV_COLUMNS = ("section", "categorie", "intitule", "detail", "previsionnel", "realise", "ecart", "ecart_pourcent", "devise")


class GrantReportError(FundingError):
    """A report or a budget that cannot be made as asked; the message is for a person."""


def kind_of(category: str) -> Literal["charge", "produit"]:
    return "charge" if category in CHARGES else "produit"


@dataclass(frozen=True)
class Row:
    kind: str  # charge or produit
    category: str
    label: str
    detail: str  # for 74, the funder
    budget: int
    actual: int

    @property
    def gap(self) -> int:
        return self.actual - self.budget

    @property
    def gap_pct(self) -> Decimal | None:
        """(réalisé − prévu) / prévu, in %, one decimal, half up; None without a budget."""
        if not self.budget:
            return None
        return (Decimal(self.gap * 100) / Decimal(self.budget)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass
class GrantReport:
    grant: Grant
    org_name: str
    siren: str
    site_name: str
    start: dt.date
    end: dt.date
    basis: str
    currency: str
    rows: list[Row] = field(default_factory=list)
    received_in_period: int = 0
    received_to_date: int = 0

    def section(self, kind: str) -> list[Row]:
        return [r for r in self.rows if r.kind == kind]

    def total(self, kind: str) -> Row:
        rows = self.section(kind)
        label = "Total des charges" if kind == "charge" else "Total des produits"
        return Row(kind, "", label, "", sum(r.budget for r in rows), sum(r.actual for r in rows))

    @property
    def result(self) -> Row:
        charges, produits = self.total("charge"), self.total("produit")
        return Row("resultat", "", "Résultat (produits − charges)", "", produits.budget - charges.budget,
                   produits.actual - charges.actual)

    @property
    def basis_text(self) -> str:
        return BASIS_TEXT[self.basis]

    @property
    def remaining(self) -> int:
        return self.grant.amount - self.received_to_date


def pct_text(value: Decimal | None) -> str:
    return "" if value is None else f"{value:+}".replace(".", ",")


# --- the budget ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetLine:
    category: str
    label: str
    amount: int


BUDGET_COLUMNS = {"categorie": "categorie", "catégorie": "categorie", "libelle": "libelle", "libellé": "libelle",
                  "montant": "montant"}


def parse_budget(content: str | bytes, currency: str) -> list[BudgetLine]:
    """A budget as CSV (``;`` or ``,``), header ``categorie;libelle;montant``: the category is the
    first two digits of the accounts (60…69, 86, 70…79, 87), ``montant`` like ``1 234,56``.
    Checked whole through funding.csvin: any bad line refuses the file, naming its line and column."""
    try:
        rows = read_csv(content, columns=BUDGET_COLUMNS, required=("categorie", "montant"), numeric=("montant",),
                        unique=("categorie", "libelle"), delimiters=";,", expected="categorie;libelle;montant")
    except CsvError as exc:
        raise GrantReportError(str(exc)) from None
    lines: list[BudgetLine] = []
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        category = row.get("categorie")[:2]
        if category not in CATEGORIES or row.get("categorie")[2:].strip(" 0123456789"):
            raise GrantReportError(str(row.error("categorie", f"catégorie inconnue « {row.get('categorie')[:20]} » "
                                                              f"(parmi {', '.join(sorted(CATEGORIES))})")))
        try:
            amount = parse_amount(row.get("montant"), currency)
        except (ValueError, FundingError) as exc:
            raise GrantReportError(str(row.error("montant", f"{exc} (ex. 1 234,56)"))) from None
        if amount < 0:
            raise GrantReportError(str(row.error("montant", f"montant négatif « {row.get('montant')} »")))
        key = (category, row.get("libelle")[:200])
        if key in seen:
            raise GrantReportError(str(row.error("libelle", f"poste en double ({category} {key[1] or '(sans libellé)'}, "
                                                            f"déjà ligne {seen[key]})")))
        seen[key] = row.line
        lines.append(BudgetLine(*key, amount))
    return lines


async def grant_by_reference(session: AsyncSession, reference: str, org_id: int | None = None) -> Grant:
    query = select(Grant).where(Grant.reference == reference.strip())
    if org_id is not None:
        query = query.where(Grant.org_id == org_id)
    grants = (await session.scalars(query)).all()
    if not grants:
        raise GrantReportError(f"subvention inconnue : {reference}")
    if len(grants) > 1:
        raise GrantReportError(f"plusieurs organisations ont une subvention {reference} : précisez --org")
    return grants[0]


async def set_budget(session: AsyncSession, grant: Grant, lines: list[BudgetLine], *, created_by: str = "") -> None:
    """The grant's budget becomes ``lines`` (those set before are replaced)."""
    await session.execute(delete(GrantBudgetLine).where(GrantBudgetLine.grant_id == grant.id))
    session.add_all([GrantBudgetLine(org_id=grant.org_id, grant_id=grant.id, category=line.category, label=line.label,
                                     amount=line.amount, currency=grant.currency, created_by=created_by[:254])
                     for line in lines])
    await session.flush()


async def budget_of(session: AsyncSession, grant: Grant) -> list[GrantBudgetLine]:
    return list((await session.scalars(select(GrantBudgetLine).where(GrantBudgetLine.grant_id == grant.id)
                                       .order_by(GrantBudgetLine.category, GrantBudgetLine.label))).all())


# --- the report ------------------------------------------------------------------------------


def convention_year(grant: Grant) -> tuple[dt.date, dt.date]:
    """The year that starts on the convention's date."""
    start = grant.convention_date
    try:
        following = start.replace(year=start.year + 1)
    except ValueError:  # 29 February
        following = start.replace(year=start.year + 1, day=28) + dt.timedelta(days=1)
    return start, following - dt.timedelta(days=1)


def fiscal_year(year: int, start_month: int) -> tuple[dt.date, dt.date]:
    """The fiscal year named ``year``: the one that starts in it (as close-year names them)."""
    if not 1900 < year < 3000:
        raise GrantReportError(f"année invalide : {year}")
    return fiscal_year_bounds(year, start_month)


async def grant_report(session: AsyncSession, grant: Grant, *, year: int | None = None, basis: str = "auto") -> GrantReport:
    """The report over the grant's convention year, or the fiscal year starting in ``year``."""
    if basis not in BASES:
        raise GrantReportError(f"règle inconnue : {basis} (parmi {', '.join(BASES)})")
    org = await session.get(Organisation, grant.org_id)
    site = await session.get(Site, grant.site_id)
    if org is None or site is None:  # foreign keys: never
        raise GrantReportError(f"subvention {grant.reference} sans organisation ou sans lieu")
    start, end = fiscal_year(year, org.fiscal_year_start_month) if year is not None else convention_year(grant)
    cur = grant.currency
    prefix = func.substr(Posting.account_number, 1, 2)

    def books(query: Select[Any], rule: str) -> Select[Any]:
        query = validated_entries(query.join(Posting, Posting.entry_id == Entry.id), org_id=grant.org_id, start=start, end=end)
        query = query.where(Posting.currency == cur)
        return query.where(Entry.grant_id == grant.id) if rule == "grant" else query.where(Entry.site_id == grant.site_id)

    if basis == "auto":
        tagged = await session.scalar(books(select(func.count()).select_from(Entry), "grant")
                                      .where(prefix.in_(list(CHARGES))))
        basis = "grant" if tagged else "site"
    sums = (await session.execute(
        books(select(prefix, Entry.grant_id, func.sum(Posting.amount)).select_from(Entry), basis)
        .where(prefix.in_(list(CATEGORIES))).group_by(prefix, Entry.grant_id)
    )).all()
    funders = dict((await session.execute(select(Grant.id, Grant.funder_name).where(Grant.org_id == grant.org_id))).all())
    actual: dict[tuple[str, str], int] = defaultdict(int)
    for category, grant_id, amount in sums:
        detail = (funders.get(grant_id) or OTHER_FUNDERS) if category == SUBSIDIES else ""
        actual[(category, detail)] += int(amount) if category in CHARGES else -int(amount)
    budget: dict[tuple[str, str], int] = defaultdict(int)
    for line in await budget_of(session, grant):
        # A subsidy's budget line names its funder; the grant's own funder when it names none.
        detail = (line.label or grant.funder_name) if line.category == SUBSIDIES else ""
        for known in {d for c, d in actual if c == SUBSIDIES}:
            if detail.casefold() == known.casefold():
                detail = known
        budget[(line.category, detail)] += line.amount
    rows = [Row(kind_of(c), c, CATEGORIES[c], d, budget.get((c, d), 0), actual.get((c, d), 0))
            for c, d in sorted(set(actual) | set(budget), key=lambda k: (kind_of(k[0]) != "charge", k[0], k[1]))
            if budget.get((c, d), 0) or actual.get((c, d), 0)]

    def received(since: dt.date) -> Select[Any]:
        return validated_entries(
            select(func.coalesce(func.sum(-Posting.amount), 0)).select_from(Entry).join(Posting, Posting.entry_id == Entry.id),
            org_id=grant.org_id, start=since, end=end,
        ).where(Entry.grant_id == grant.id, Posting.account_number == "441", Posting.amount < 0)

    report = GrantReport(grant=grant, org_name=org.name, siren=org.siren, site_name=site.name, start=start, end=end,
                         basis=basis, currency=cur, rows=rows)
    report.received_in_period = int(await session.scalar(received(start)) or 0)
    report.received_to_date = int(await session.scalar(received(dt.date(1900, 1, 1))) or 0)
    return report


# --- CSV -------------------------------------------------------------------------------------


def report_csv(report: GrantReport) -> bytes:
    """``;``-separated, decimal comma without thousands separator or currency sign (a spreadsheet
    reads the amounts as numbers), UTF-8 with a BOM, as the other CSV exports."""
    buf = io.StringIO()
    writer = csvout.writer(buf, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    cur = report.currency

    def line(section: str, row: Row) -> None:
        writer.writerow((section, row.category, row.label, row.detail, format_plain(row.budget, cur),
                         format_plain(row.actual, cur), format_plain(row.gap, cur), pct_text(row.gap_pct), cur))

    for kind, section in (("charge", "charges"), ("produit", "produits")):
        for row in report.section(kind):
            line(section, row)
        line("total", report.total(kind))
    line("resultat", report.result)
    g = report.grant
    for key, value in (("subvention_accordee", format_plain(g.amount, cur)),
                       ("subvention_recue_periode", format_plain(report.received_in_period, cur)),
                       ("subvention_recue_cumul", format_plain(report.received_to_date, cur)),
                       ("subvention_reste_a_recevoir", format_plain(report.remaining, cur))):
        writer.writerow(("subvention", "", key, "", "", value, "", "", cur))
    for key, value in (("reference", g.reference), ("financeur", g.funder_name), ("siret_financeur", g.funder_siret or ""),
                       ("objet", g.object), ("date_convention", g.convention_date.isoformat()),
                       ("periode", f"{report.start.isoformat()}/{report.end.isoformat()}"), ("lieu", report.site_name),
                       ("regle_realise", f"{report.basis} : {report.basis_text}")):
        writer.writerow(("annexe", "", key, value, "", "", "", "", ""))
    return ("\ufeff" + buf.getvalue()).encode()


def report_filename(report: GrantReport, ext: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in report.grant.reference)
    return f"compte-rendu-{report.siren}-{safe}-{report.start:%Y%m%d}-{report.end:%Y%m%d}.{ext}"


# --- PDF -------------------------------------------------------------------------------------


def report_pdf(report: GrantReport) -> bytes:
    """The report printed by WeasyPrint, through the invoices' environment (French whatever the
    reader's locale: a document for the funder)."""
    from weasyprint import HTML

    from funding.invoicing.pdf import TEMPLATE_DIR, environment, fonts

    html = environment().get_template("ledger/grant_report_pdf.html").render(
        report=report, pct=pct_text, today=paris_today())
    pdf: bytes = HTML(string=html, base_url=str(TEMPLATE_DIR)).write_pdf(font_config=fonts())
    return pdf
