"""The chart of accounts we ship (PCG, associations). Organisations may add accounts."""

from __future__ import annotations

import re

from funding.errors import FundingError

# (number, label) — ACCOUNTING.md §1. 5115 is used as the Stripe balance.
DEFAULT_CHART: tuple[tuple[str, str], ...] = (
    ("110", "Report à nouveau (solde créditeur)"),
    ("119", "Report à nouveau (solde débiteur)"),
    ("120", "Résultat de l'exercice (excédent)"),
    ("129", "Résultat de l'exercice (déficit)"),
    ("131", "Subventions d'équipement"),
    ("139", "Subventions d'investissement inscrites au compte de résultat"),
    ("194", "Fonds dédiés sur subventions de fonctionnement"),
    ("2181", "Installations générales, agencements, aménagements divers"),
    ("2183", "Matériel de bureau et matériel informatique"),
    ("2184", "Mobilier"),
    ("28181", "Amortissements des installations générales, agencements"),
    ("28183", "Amortissements du matériel de bureau et informatique"),
    ("28184", "Amortissements du mobilier"),
    ("411", "Clients"),
    ("4191", "Avances et acomptes reçus"),
    ("441", "État et collectivités – subventions à recevoir"),
    ("44571", "TVA collectée"),
    ("445711", "TVA collectée 20 %"),
    ("445712", "TVA collectée 10 %"),
    ("445713", "TVA collectée 5,5 %"),
    ("445714", "TVA collectée 2,1 %"),
    ("467", "Autres comptes débiteurs ou créditeurs"),
    ("487", "Produits constatés d'avance"),
    ("5115", "Paiements par carte à encaisser (solde Stripe)"),
    ("512", "Banque"),
    ("580", "Virements internes"),
    ("604", "Achats d'études et prestations de services"),
    ("606", "Achats non stockés de matières et fournitures"),
    ("613", "Locations"),
    ("622", "Rémunérations d'intermédiaires et honoraires"),
    ("627", "Services bancaires et assimilés (frais Stripe)"),
    ("654", "Pertes sur créances irrécouvrables"),
    ("6811", "Dotations aux amortissements des immobilisations"),
    ("6894", "Engagements à réaliser sur subventions attribuées"),
    ("706", "Prestations de services"),
    ("7063", "Parrainages"),
    ("707", "Ventes de marchandises"),
    ("741", "Subventions d'exploitation"),
    ("742", "Subventions d'équilibre"),
    ("75411", "Dons manuels"),
    ("7542", "Mécénat"),
    ("7561", "Cotisations sans contrepartie"),
    ("7562", "Cotisations avec contrepartie"),
    ("758", "Produits divers de gestion courante"),
    ("777", "Quote-part des subventions d'investissement virée au résultat"),
    ("7894", "Report des ressources non utilisées des exercices antérieurs"),
    # Contributions volontaires en nature (classe 8, règlement ANC 2018-06): uses (86) and sources (87).
    ("860", "Secours en nature"),
    ("861", "Mise à disposition gratuite de biens"),
    ("862", "Prestations"),
    ("864", "Personnel bénévole"),
    ("870", "Bénévolat"),
    ("871", "Prestations en nature"),
    ("875", "Dons en nature"),
)

# VAT collected, one sub-account per rate (per mille); 44571 for a rate without its own.
# What a fixed asset's account depreciates into (2x → 28x).
DEPRECIATION_ACCOUNTS = {"2181": "28181", "2183": "28183", "2184": "28184"}

VAT_ACCOUNTS = {200: "445711", 100: "445712", 55: "445713", 21: "445714"}


def vat_account(vat_rate: int) -> str:
    return VAT_ACCOUNTS.get(vat_rate, "44571")


JOURNALS = {
    "ST": "Stripe",
    "VT": "Ventes",
    "CA": "Caisse (bar)",
    "BQ": "Banque",
    "OD": "Opérations diverses",
    "AN": "À-nouveaux",
}


class AccountNumberError(FundingError, ValueError):
    """Not an account number of the chart (a ValueError too, for the callers that check input)."""


def check_account_number(number: str) -> str:
    number = (number or "").strip()
    if not re.fullmatch(r"[1-8]\d{2,19}", number):
        raise AccountNumberError(f"numéro de compte invalide : {number or '(vide)'} (au moins 3 chiffres, classe 1 à 8)")
    return number
