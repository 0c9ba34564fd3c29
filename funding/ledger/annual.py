"""Annual accounts of an association: compte de résultat and bilan in the presentation of the
règlement ANC 2018-06, the year before beside (N and N-1), the contributions in kind (classe 8)
below the result, the movements of the fonds dédiés, and the revenue by funding source.

How the figures are computed (they hold whether or not a year was closed):

- the à-nouveau entries (journal ``AN``, posted by a year's closing on the first day of the
  next year) are ignored: everything comes from the other validated entries;
- the bilan at the year's end E is, for classes 1 to 5, every entry dated on or before E;
- the results of the earlier years (classes 6 and 7 before the year's start) are shown as
  report à nouveau (11) in the fonds propres, the year's result (classes 6 and 7 within the
  year) as excédent ou déficit (12): so the actif always equals the passif.

One query reads the statements: a GROUP BY on account and currency, summing each row into its
date bucket (before N-1, N-1, N); then every account is mapped here to its line by the longest
matching prefix of :data:`INCOME` or :data:`BALANCE_SHEET`. The revenue by funding source is
funding.ledger.service.revenue_by_source's, for N and N-1. Labels are French (the regulation's
words), translated on the page.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import CompoundSelect, Select, case, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from funding import csvout
from funding.clock import paris_today
from funding.db import digits
from funding.errors import FundingError
from funding.i18n import N_
from funding.ledger.models import Account, Entry, Posting
from funding.ledger.service import revenue_by_source
from funding.money import format_plain

AN_JOURNAL = "AN"
BEFORE, PREVIOUS, CURRENT = 0, 1, 2  # date buckets: before N-1, N-1, N


class AnnualAccountsError(FundingError):
    """Annual accounts that cannot be drawn up as asked (the message says why, in French)."""


# --- the presentation: (section, line key, label, account prefixes) -----------------------------

# Compte de résultat. A charge's line shows its debit balance, a produit's its credit balance.
INCOME: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("produits_exploitation", "cotisations", N_("Cotisations"), ("756",)),
    ("produits_exploitation", "ventes_biens", N_("Ventes de biens"), ("701", "702", "703", "707", "7097")),
    ("produits_exploitation", "ventes_services", N_("Ventes de prestations de service"), ("70",)),
    ("produits_exploitation", "production", N_("Production stockée et immobilisée"), ("71", "72")),
    ("produits_exploitation", "subventions", N_("Concours publics et subventions d'exploitation"), ("74",)),
    ("produits_exploitation", "dons", N_("Dons manuels"), ("7541",)),
    ("produits_exploitation", "mecenat", N_("Mécénats"), ("7542",)),
    ("produits_exploitation", "legs", N_("Legs, donations et assurances-vie"), ("7543",)),
    ("produits_exploitation", "contributions_financieres", N_("Contributions financières"), ("755",)),
    ("produits_exploitation", "reprises", N_("Reprises sur amortissements, dépréciations, provisions et transferts de charges"),
     ("781", "791")),
    ("produits_exploitation", "autres_produits", N_("Autres produits"), ("7",)),
    ("charges_exploitation", "achats_marchandises", N_("Achats de marchandises"), ("607", "6037")),
    ("charges_exploitation", "achats_matieres", N_("Achats de matières premières et autres approvisionnements"),
     ("601", "602", "6031", "6032")),
    ("charges_exploitation", "charges_externes", N_("Autres achats et charges externes"), ("60", "61", "62")),
    ("charges_exploitation", "aides_financieres", N_("Aides financières"), ("657",)),
    ("charges_exploitation", "impots_taxes", N_("Impôts, taxes et versements assimilés"), ("63",)),
    ("charges_exploitation", "salaires", N_("Salaires et traitements"), ("641", "642", "643", "644", "648")),
    ("charges_exploitation", "charges_sociales", N_("Charges sociales"), ("645", "646", "647", "649")),
    ("charges_exploitation", "amortissements", N_("Dotations aux amortissements et aux dépréciations"),
     ("6811", "6812", "6816", "6817")),
    ("charges_exploitation", "provisions", N_("Dotations aux provisions"), ("6815",)),
    ("charges_exploitation", "autres_charges", N_("Autres charges"), ("6",)),
    ("produits_financiers", "produits_financiers", N_("Produits financiers"), ("76", "786", "796")),
    ("charges_financieres", "charges_financieres", N_("Charges financières"), ("66", "686")),
    ("produits_exceptionnels", "produits_exceptionnels", N_("Produits exceptionnels"), ("77", "787", "797")),
    ("charges_exceptionnelles", "charges_exceptionnelles", N_("Charges exceptionnelles"), ("67", "687")),
    ("impot", "impot", N_("Impôts sur les sociétés"), ("69",)),
    ("fonds_dedies", "reports_fonds_dedies", N_("Reports en fonds dédiés de l'exercice"), ("689",)),
    ("fonds_dedies", "utilisations_fonds_dedies", N_("Utilisations des fonds dédiés antérieurs"), ("789",)),
)
INCOME_SECTIONS = {
    "produits_exploitation": N_("Produits d'exploitation"),
    "charges_exploitation": N_("Charges d'exploitation"),
    "produits_financiers": N_("Produits financiers"),
    "charges_financieres": N_("Charges financières"),
    "produits_exceptionnels": N_("Produits exceptionnels"),
    "charges_exceptionnelles": N_("Charges exceptionnelles"),
    "impot": N_("Impôts sur les sociétés"),
    "fonds_dedies": N_("Fonds dédiés"),
}
# Each group of charges closes with its result: (the produits it is set against, key, label).
RESULT_OF = {
    "charges_exploitation": ("produits_exploitation", "resultat_exploitation", N_("Résultat d'exploitation")),
    "charges_financieres": ("produits_financiers", "resultat_financier", N_("Résultat financier")),
    "charges_exceptionnelles": ("produits_exceptionnels", "resultat_exceptionnel", N_("Résultat exceptionnel")),
}
# Which lines are produits (shown as credit balances); the others are charges.
PRODUCT_LINES = frozenset(k for s, k, _l, _p in INCOME if s.startswith("produits")) | {"utilisations_fonds_dedies"}

# Contributions volontaires en nature, below the result.
IN_KIND: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("emplois", "secours", N_("Secours en nature"), ("860",)),
    ("emplois", "mise_a_disposition", N_("Mise à disposition gratuite de biens"), ("861",)),
    ("emplois", "prestations", N_("Prestations"), ("862",)),
    ("emplois", "personnel_benevole", N_("Personnel bénévole"), ("864",)),
    ("emplois", "autres_emplois", N_("Autres emplois en nature"), ("86",)),
    ("contributions", "benevolat", N_("Bénévolat"), ("870",)),
    ("contributions", "prestations_nature", N_("Prestations en nature"), ("871",)),
    ("contributions", "dons_nature", N_("Dons en nature"), ("875",)),
    ("contributions", "autres_contributions", N_("Autres contributions en nature"), ("87",)),
)

# Bilan: (side, line key, label, prefixes, balance): "debit" or "credit" when the line takes an
# account only with that balance (a 4x or 5x account is a créance or a dette by its balance).
BALANCE_SHEET: tuple[tuple[str, str, str, tuple[str, ...], str | None], ...] = (
    ("actif", "immo_incorporelles", N_("Immobilisations incorporelles"), ("20", "280", "290"), None),
    ("actif", "immo_corporelles", N_("Immobilisations corporelles"), ("21", "22", "23", "281", "282", "291"), None),
    ("actif", "biens_legs", N_("Biens reçus par legs ou donations destinés à être cédés"), ("24",), None),
    ("actif", "immo_financieres", N_("Immobilisations financières"), ("25", "26", "27", "296", "297"), None),
    ("actif", "autres_immo", N_("Autres immobilisations"), ("2",), None),
    ("actif", "stocks", N_("Stocks et en-cours"), ("3",), None),
    ("actif", "creances_usagers", N_("Créances usagers et comptes rattachés"), ("41",), "debit"),
    ("actif", "autres_creances", N_("Autres créances"), ("4",), "debit"),
    ("actif", "charges_constatees", N_("Charges constatées d'avance"), ("486",), None),
    ("actif", "vmp", N_("Valeurs mobilières de placement"), ("50",), "debit"),
    ("actif", "disponibilites", N_("Disponibilités"), ("5",), "debit"),
    ("passif", "fonds_sans_reprise", N_("Fonds propres sans droit de reprise"), ("100", "101", "102"), None),
    ("passif", "fonds_avec_reprise", N_("Fonds propres avec droit de reprise"), ("103",), None),
    ("passif", "ecarts_reevaluation", N_("Écarts de réévaluation"), ("105",), None),
    ("passif", "reserves", N_("Réserves"), ("104", "106", "108", "10"), None),
    ("passif", "report_a_nouveau", N_("Report à nouveau"), ("11",), None),
    ("passif", "resultat", N_("Excédent ou déficit de l'exercice"), ("12",), None),
    ("passif", "subventions_investissement", N_("Subventions d'investissement"), ("13",), None),
    ("passif", "provisions_reglementees", N_("Provisions réglementées"), ("14",), None),
    ("passif", "fonds_reportes", N_("Fonds reportés liés aux legs ou donations"), ("191",), None),
    ("passif", "fonds_dedies", N_("Fonds dédiés"), ("19",), None),
    ("passif", "provisions", N_("Provisions pour risques et charges"), ("15",), None),
    ("passif", "emprunts", N_("Emprunts et dettes assimilées"), ("16", "17"), None),
    ("passif", "dettes_bancaires", N_("Dettes auprès des établissements de crédit"), ("5",), "credit"),
    ("passif", "avances_recues", N_("Avances et acomptes reçus"), ("419",), None),
    ("passif", "dettes_fournisseurs", N_("Dettes fournisseurs et comptes rattachés"), ("40",), "credit"),
    ("passif", "dettes_fiscales", N_("Dettes fiscales et sociales"), ("42", "43", "44"), "credit"),
    ("passif", "autres_dettes", N_("Autres dettes"), ("4",), "credit"),
    ("passif", "produits_constates", N_("Produits constatés d'avance"), ("487",), None),
    ("passif", "autres_passif", N_("Autres fonds (classe 1)"), ("1",), None),
)
ACTIF_GROUPS = {  # heading of each actif line
    "immo_incorporelles": N_("Actif immobilisé"), "stocks": N_("Actif circulant"),
}
PASSIF_GROUPS = {
    "fonds_sans_reprise": N_("Fonds propres"), "fonds_reportes": N_("Fonds reportés et dédiés"),
    "provisions": N_("Provisions"), "emprunts": N_("Dettes"),
}


def _longest(account: str, candidates: Sequence[tuple[Any, ...]]) -> tuple[Any, ...] | None:
    best, size = None, -1
    for item in candidates:
        for prefix in item[3]:
            if account.startswith(prefix) and len(prefix) > size:
                best, size = item, len(prefix)
    return best


def income_line(account: str) -> str | None:
    """The compte de résultat's line of a class 6 or 7 account (None for another class)."""
    if account[:1] not in ("6", "7"):
        return None
    found = _longest(account, INCOME)
    return found[1] if found else None


def in_kind_line(account: str) -> str | None:
    if account[:1] != "8":
        return None
    found = _longest(account, IN_KIND)
    return found[1] if found else None


def balance_line(account: str, balance: int) -> str | None:
    """The bilan's line of a class 1 to 5 account with that balance (debit > 0)."""
    if account[:1] not in ("1", "2", "3", "4", "5"):
        return None
    side = "debit" if balance > 0 else "credit"
    found = _longest(account, [b for b in BALANCE_SHEET if b[4] in (None, side)])
    return found[1] if found else None


# --- the figures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """A printed line: ``kind`` is ``heading``, ``line``, ``subtotal`` or ``total``."""

    section: str
    key: str
    label: str
    n: int
    n1: int
    kind: str = "line"


@dataclass
class AnnualAccounts:
    org_name: str
    siren: str
    site: str | None  # slug of the analytic view, None for the organisation
    site_name: str | None
    year: int
    start: dt.date
    end: dt.date
    previous_start: dt.date
    previous_end: dt.date
    currency: str
    income: list[Row] = field(default_factory=list)
    in_kind: list[Row] = field(default_factory=list)
    actif: list[Row] = field(default_factory=list)
    passif: list[Row] = field(default_factory=list)
    dedicated: list[Row] = field(default_factory=list)
    sources: list[Row] = field(default_factory=list)
    result: tuple[int, int] = (0, 0)
    total_actif: tuple[int, int] = (0, 0)
    total_passif: tuple[int, int] = (0, 0)
    other_currencies: list[str] = field(default_factory=list)
    # Balances per account, for the reader who checks a line (account, label, N, N-1).
    details: dict[str, list[tuple[str, str, int, int]]] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return self.total_actif == self.total_passif

    @property
    def title(self) -> str:
        return f"{self.year}" if self.start.month == 1 else f"{self.year}-{self.year + 1}"


def fiscal_year(year: int, start_month: int) -> tuple[dt.date, dt.date]:
    """The fiscal year named ``year``: the one starting in ``year`` (so 2026 is 2026-07-01 → 2027-06-30
    for a year starting in July)."""
    if not 1900 <= year <= 9998:
        raise AnnualAccountsError(f"exercice invalide : {year} (une année, par exemple 2026)")
    start = dt.date(year, start_month, 1)
    following = dt.date(year + 1, start_month, 1)
    return start, following - dt.timedelta(days=1)


def current_year(today: dt.date, start_month: int) -> int:
    """The name of the fiscal year ``today`` falls in."""
    return today.year if today.month >= start_month else today.year - 1


def parse_year(text: str | None) -> int:
    raw = (text or "").strip()
    if not digits(raw) or len(raw) != 4:
        raise AnnualAccountsError(f"exercice invalide : {raw or '(vide)'} (une année sur quatre chiffres, par exemple 2026)")
    return int(raw)


def buckets_query(*, org_id: int, site_id: int | None, previous_start: dt.date, start: dt.date,
                  end: dt.date, dialect: str = "postgresql") -> Select[int, str, str, int] | CompoundSelect[int, str, str, int]:
    """The one query: per year bucket (0: before N-1, 1: N-1, 2: N), account and currency, the
    sum of the validated entries outside journal AN dated on or before ``end``.

    Each database its own form, measured over 1,000,000 postings (bench/annual_accounts_bench.py).
    SQLite groups by sorting every row with the columns its sums read: a bucket computed per row
    made it carry each posting's date through the sort (2.1× the plain balance); three GROUP BYs
    on disjoint date ranges joined by UNION ALL, each reading its own range of the entries' (org,
    date) index with only the amount to sort, cost 1.3–1.6×. PostgreSQL hashes the groups, and
    the union would read the postings three times (1.8–2×): there one GROUP BY on the bucket."""
    ranges = ((Entry.entry_date < previous_start,), (Entry.entry_date >= previous_start, Entry.entry_date < start),
              (Entry.entry_date >= start, Entry.entry_date <= end))
    common = [Entry.org_id == org_id, Entry.number.is_not(None), Entry.journal_code != AN_JOURNAL]
    if site_id is not None:
        common.append(Entry.site_id == site_id)
    if dialect != "sqlite":
        bucket = case((Entry.entry_date < previous_start, 0), (Entry.entry_date < start, 1), else_=2).label("bucket")
        return (select(bucket, Posting.account_number, Posting.currency, func.sum(Posting.amount).label("amount"))
                .join(Entry, Entry.id == Posting.entry_id).where(*common, Entry.entry_date <= end)
                .group_by(bucket, Posting.account_number, Posting.currency))
    return union_all(*(
        select(literal(n).label("bucket"), Posting.account_number, Posting.currency, func.sum(Posting.amount).label("amount"))
        .join(Entry, Entry.id == Posting.entry_id).where(*common, *dates)
        .group_by(Posting.account_number, Posting.currency)
        for n, dates in enumerate(ranges)))


def _sum_rows(section: str, spec: Sequence[tuple[Any, ...]], amounts: dict[str, tuple[int, int]], sign: dict[str, int]) -> list[Row]:
    return [Row(section, key, label, sign.get(key, 1) * amounts[key][0], sign.get(key, 1) * amounts[key][1])
            for _s, key, label, *_rest in spec if key in amounts and amounts[key] != (0, 0)]


def _pair(rows: list[Row]) -> tuple[int, int]:
    return sum(r.n for r in rows), sum(r.n1 for r in rows)


async def annual_accounts(session: AsyncSession, *, org_id: int, year: int, site_id: int | None = None,
                          with_sources: bool = True) -> AnnualAccounts:
    """The annual accounts of fiscal year ``year`` of an organisation, or of one of its sites; without
    ``with_sources``, the statements alone (no revenue by funding source)."""
    from funding.orgs.models import Organisation, Site

    org = await session.get(Organisation, org_id)
    if org is None:
        raise AnnualAccountsError("organisation inconnue")
    site = None
    if site_id is not None:
        site = await session.get(Site, site_id)
        if site is None or site.org_id != org.id:
            raise AnnualAccountsError("ce lieu n'est pas de cette organisation")
    start, end = fiscal_year(year, org.fiscal_year_start_month)
    previous_start, previous_end = fiscal_year(year - 1, org.fiscal_year_start_month)
    acc = AnnualAccounts(org.name, org.siren, site.slug if site else None, site.name if site else None, year, start, end,
                         previous_start, previous_end, org.currency)

    # account -> [before, previous, current]
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    others: set[str] = set()
    rows = (await session.execute(buckets_query(org_id=org.id, site_id=site_id, previous_start=previous_start,
                                                start=start, end=end, dialect=session.get_bind().dialect.name))).all()
    for bucket, account, currency, amount in rows:
        if currency != org.currency:
            others.add(currency)
            continue
        sums[account][int(bucket)] += int(amount or 0)
    acc.other_currencies = sorted(others)
    labels = dict((await session.execute(select(Account.number, Account.label).where(Account.org_id == org.id))).all())
    fill(acc, sums, labels)
    if with_sources:
        acc.sources = await sources_of(session, acc, org_id=org.id, site_id=site_id)
    return acc


async def sources_of(session: AsyncSession, acc: AnnualAccounts, *, org_id: int, site_id: int | None) -> list[Row]:
    """The revenue (class 7) of N and N-1 by funding source: the service's revenue_by_source, as the
    funding-mix report shows it."""
    merged: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for column, (lo, hi) in ((0, (acc.start, acc.end)), (1, (acc.previous_start, acc.previous_end))):
        for source in await revenue_by_source(session, org_id=org_id, site_id=site_id, start=lo, end=hi):
            if source.currency == acc.currency:
                merged[source.source][column] += source.amount
    return sorted((Row("origine", k, k, n, n1) for k, (n, n1) in merged.items() if (n, n1) != (0, 0)),
                  key=lambda r: (-r.n, -r.n1, r.key))


def fill(acc: AnnualAccounts, sums: dict[str, list[int]], labels: dict[str, str]) -> None:
    """Map the balances per account and date bucket onto the statements' lines."""
    income: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    in_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    bilan: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    details: dict[str, list[tuple[str, str, int, int]]] = defaultdict(list)
    earlier = [0, 0]  # results of the years before N, before N-1 (debit > 0: a deficit)
    for account in sorted(sums):
        before, previous, current = sums[account]
        cls = account[:1]
        if cls in ("6", "7"):
            key = income_line(account)
            if key is None:
                continue
            income[key][0] += current
            income[key][1] += previous
            earlier[0] += before + previous
            earlier[1] += before
            if current or previous:
                details[key].append((account, labels.get(account, ""), current, previous))
        elif cls == "8":
            key = in_kind_line(account)
            if key is None:
                continue
            in_kind[key][0] += current
            in_kind[key][1] += previous
            if current or previous:
                details[key].append((account, labels.get(account, ""), current, previous))
        elif cls in ("1", "2", "3", "4", "5"):
            at_n, at_n1 = before + previous + current, before + previous
            for column, balance in ((0, at_n), (1, at_n1)):
                if balance:
                    line = balance_line(account, balance)
                    if line is not None:
                        bilan[line][column] += balance
            if at_n or at_n1:
                details.setdefault(f"compte:{account}", []).append((account, labels.get(account, ""), at_n, at_n1))

    # Compte de résultat: charges as debit balances, produits as credit balances.
    sign = {key: -1 if key in PRODUCT_LINES else 1 for _s, key, _l, _p in INCOME}
    amounts = {k: (v[0], v[1]) for k, v in income.items()}
    rows: list[Row] = []
    totals: dict[str, tuple[int, int]] = {}
    for section, title in INCOME_SECTIONS.items():
        lines = _sum_rows(section, [i for i in INCOME if i[0] == section], amounts, sign)
        totals[section] = _pair(lines)
        if section == "fonds_dedies" and not lines:
            continue
        rows.append(Row(section, section, title, *totals[section], kind="heading"))
        rows += lines
        if section in RESULT_OF:
            earned = totals[RESULT_OF[section][0]]
            rows.append(Row(section, RESULT_OF[section][1], RESULT_OF[section][2],
                            earned[0] - totals[section][0], earned[1] - totals[section][1], kind="subtotal"))
    fonds = {r.key: (r.n, r.n1) for r in rows if r.section == "fonds_dedies" and r.kind == "line"}
    reports, uses = fonds.get("reports_fonds_dedies", (0, 0)), fonds.get("utilisations_fonds_dedies", (0, 0))
    produits = [totals[k] for k in totals if k.startswith("produits")] + [uses]
    charges = [totals[k] for k in totals if k.startswith("charges") or k == "impot"] + [reports]
    total_produits = (sum(p[0] for p in produits), sum(p[1] for p in produits))
    total_charges = (sum(c[0] for c in charges), sum(c[1] for c in charges))
    rows.append(Row("totaux", "total_produits", N_("Total des produits"), *total_produits, kind="total"))
    rows.append(Row("totaux", "total_charges", N_("Total des charges"), *total_charges, kind="total"))
    result = (total_produits[0] - total_charges[0], total_produits[1] - total_charges[1])
    rows.append(Row("totaux", "excedent", N_("Excédent ou déficit"), *result, kind="total"))
    acc.income, acc.result = rows, result

    # Contributions volontaires en nature.
    kind_amounts = {k: (v[0], v[1]) for k, v in in_kind.items()}
    kind_sign = {key: -1 if section == "contributions" else 1 for section, key, _l, _p in IN_KIND}
    acc.in_kind = []
    for section, title in (("emplois", N_("Emplois des contributions volontaires en nature")),
                           ("contributions", N_("Contributions volontaires en nature"))):
        lines = _sum_rows(section, [i for i in IN_KIND if i[0] == section], kind_amounts, kind_sign)
        acc.in_kind.append(Row(section, section, title, *_pair(lines), kind="heading"))
        acc.in_kind += lines

    # Bilan: earlier results as report à nouveau, the year's as its result (credit = excédent).
    bilan["report_a_nouveau"][0] += earlier[0]
    bilan["report_a_nouveau"][1] += earlier[1]
    bilan["resultat"][0] -= result[0]
    bilan["resultat"][1] -= result[1]
    amounts = {k: (v[0], v[1]) for k, v in bilan.items()}
    amounts["report_a_nouveau"] = amounts.get("report_a_nouveau", (0, 0))
    amounts["resultat"] = amounts.get("resultat", (0, 0))
    actif_spec = [b for b in BALANCE_SHEET if b[0] == "actif"]
    passif_spec = [b for b in BALANCE_SHEET if b[0] == "passif"]
    actif = _sum_rows("actif", actif_spec, amounts, {})
    passif = _sum_rows("passif", passif_spec, amounts, {b[1]: -1 for b in passif_spec})
    for name in ("report_a_nouveau", "resultat"):  # always shown, even at zero
        if not any(r.key == name for r in passif):
            label = next(b[2] for b in passif_spec if b[1] == name)
            passif.append(Row("passif", name, label, 0, 0))
    order = {b[1]: n for n, b in enumerate(BALANCE_SHEET)}
    passif.sort(key=lambda r: order[r.key])
    acc.actif = _grouped(actif, ACTIF_GROUPS, order)
    acc.passif = _grouped(passif, PASSIF_GROUPS, order)
    acc.total_actif, acc.total_passif = _pair(actif), _pair(passif)
    acc.actif.append(Row("actif", "total_actif", N_("Total de l'actif"), *acc.total_actif, kind="total"))
    acc.passif.append(Row("passif", "total_passif", N_("Total du passif"), *acc.total_passif, kind="total"))

    # Fonds dédiés: at the start, reports (689), uses (789), at the end (credit balances of 19x but 191).
    def dedicated(buckets: int) -> int:
        """Credit balance of the fonds dédiés (19x but 191) over the first ``buckets`` date buckets."""
        return -sum(sum(v[:buckets]) for a, v in sums.items() if a.startswith("19") and not a.startswith("191"))

    start_n, start_n1 = dedicated(2), dedicated(1)
    end_n, end_n1 = dedicated(3), start_n
    acc.dedicated = []
    if any((start_n1, end_n, end_n1, *reports, *uses)):
        acc.dedicated = [
            Row("fonds_dedies", "debut", N_("Fonds dédiés au début de l'exercice"), start_n, start_n1),
            Row("fonds_dedies", "reports", N_("Reports de l'exercice (689)"), *reports),
            Row("fonds_dedies", "utilisations", N_("Utilisations (789)"), *uses),
        ]
        other = (end_n - start_n - reports[0] + uses[0], end_n1 - start_n1 - reports[1] + uses[1])
        if other != (0, 0):
            acc.dedicated.append(Row("fonds_dedies", "autres", N_("Autres mouvements (19)"), *other))
        acc.dedicated.append(Row("fonds_dedies", "fin", N_("Fonds dédiés à la fin de l'exercice"), end_n, end_n1, kind="total"))
    acc.details = dict(details)


def _grouped(rows: list[Row], groups: dict[str, str], order: dict[str, int]) -> list[Row]:
    """The lines under their headings (a heading carries its group's totals)."""
    starts = sorted(groups, key=lambda k: order[k])
    out: list[Row] = []
    for n, first in enumerate(starts):
        lo = order[first]
        hi = order[starts[n + 1]] if n + 1 < len(starts) else len(order)
        members = [r for r in rows if lo <= order[r.key] < hi]
        if members:
            out.append(Row(members[0].section, f"groupe_{first}", groups[first], *_pair(members), kind="heading"))
            out += members
    return out


# --- CSV ----------------------------------------------------------------------------------------

CSV_COLUMNS = ("etat", "rubrique", "type", "libelle", "exercice_n", "exercice_n_1", "devise")


def annual_csv(acc: AnnualAccounts) -> bytes:
    """``;``-separated, decimal comma without thousands separator (numbers a spreadsheet reads as
    numbers), UTF-8 with a BOM, like the other exports."""
    buf = io.StringIO()
    writer = csvout.writer(buf, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    cur = acc.currency
    where = acc.site or acc.siren
    writer.writerow(("entete", "exercice", "info", f"{acc.org_name} — {where} — {acc.start.isoformat()}/{acc.end.isoformat()}",
                     acc.title, str(acc.year - 1), cur))
    for state, rows in (("compte_de_resultat", acc.income), ("contributions_en_nature", acc.in_kind),
                        ("bilan_actif", acc.actif), ("bilan_passif", acc.passif), ("fonds_dedies", acc.dedicated),
                        ("origine_des_produits", acc.sources)):
        for r in rows:
            writer.writerow((state, r.key, r.kind, r.label, format_plain(r.n, cur), format_plain(r.n1, cur), cur))
    return ("\ufeff" + buf.getvalue()).encode()


# --- PDF ----------------------------------------------------------------------------------------

PDF_TEMPLATE = "ledger/annual_accounts_pdf.html"


def annual_html(acc: AnnualAccounts, *, source_labels: dict[str, str] | None = None) -> str:
    """The accounts as a printable French document (the PDF's HTML)."""
    from funding.i18n import SOURCE_LABELS
    from funding.invoicing.pdf import environment

    return environment().get_template(PDF_TEMPLATE).render(acc=acc, sources=source_labels or SOURCE_LABELS,
                                                           today=paris_today())


def annual_pdf(acc: AnnualAccounts) -> bytes:
    """Through WeasyPrint, the engine and fonts of the invoices (funding.invoicing.pdf)."""
    from weasyprint import HTML

    from funding.invoicing.pdf import TEMPLATE_DIR, fonts

    html = HTML(string=annual_html(acc), base_url=str(TEMPLATE_DIR / "ledger"))
    pdf: bytes = html.write_pdf(font_config=fonts())
    return pdf


def pdf_name(acc: AnnualAccounts) -> str:
    return f"comptes-annuels-{acc.site or acc.siren}-{acc.year}.pdf"


def csv_name(acc: AnnualAccounts) -> str:
    return f"comptes-annuels-{acc.site or acc.siren}-{acc.year}.csv"
