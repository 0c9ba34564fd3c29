"""Demo: the budget of the Relais de Courpière's digital workshops, for its grant report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from funding.ledger import grant_report

if TYPE_CHECKING:
    from funding.demo.seed import DemoContext

# The budget filed with the application to the Commune de Courpière (balanced, as the form asks).
COURPIERE_BUDGET = """categorie;libelle;montant
60;Petit matériel numérique et fournitures;1 200,00
61;Location de la salle du Relais;1 800,00
62;Intervenants (formateurs numériques);2 400,00
64;Animatrice (quart temps);4 500,00
86;Bénévolat (accompagnement des usagers);1 500,00
70;Participation des usagers aux ateliers;600,00
74;Commune de Courpière;5 000,00
74;Département du Puy-de-Dôme;2 500,00
75;Cotisations et dons;1 800,00
87;Bénévolat;1 500,00
"""


async def seed(session: AsyncSession, demo: DemoContext) -> None:
    grant = await grant_report.grant_by_reference(session, "COURPIERE-2026-12", demo.org.id)
    await grant_report.set_budget(session, grant, grant_report.parse_budget(COURPIERE_BUDGET, grant.currency),
                                  created_by="demo")
