"""grants by their nature, and a fixed-asset register

A grant is recorded with its nature (operating, multi-year over ``years`` fiscal years,
restricted, investment), which says how its year-ends book it (funding.ledger.yearend: 487,
fonds dédiés 194/6894/7894, 131/139/777). ``fixed_assets`` is the register of what was bought
to last, depreciated straight-line (6811/28x), with the investment grant that funded it. The
accounts these need join every organisation's chart.
"""

import sqlalchemy as sa
from alembic import op

from funding.ddl import (
    add_accounts,
    check,
    column,
    create_table,
    date,
    foreign_key,
    index,
    ref,
    string,
    timestamp,
    unique,
)

revision = "0020"
down_revision = "0026"

ACCOUNTS = [
    ("131", "Subventions d'équipement"),
    ("139", "Subventions d'investissement inscrites au compte de résultat"),
    ("2181", "Installations générales, agencements, aménagements divers"),
    ("2183", "Matériel de bureau et matériel informatique"),
    ("2184", "Mobilier"),
    ("28181", "Amortissements des installations générales, agencements"),
    ("28183", "Amortissements du matériel de bureau et informatique"),
    ("28184", "Amortissements du mobilier"),
    ("604", "Achats d'études et prestations de services"),
    ("606", "Achats non stockés de matières et fournitures"),
    ("613", "Locations"),
    ("622", "Rémunérations d'intermédiaires et honoraires"),
    ("6811", "Dotations aux amortissements des immobilisations"),
    ("777", "Quote-part des subventions d'investissement virée au résultat"),
]


def upgrade() -> None:
    with op.batch_alter_table("grants") as batch_op:
        batch_op.add_column(sa.Column("nature", sa.String(length=20), nullable=False, server_default="operating"))
        batch_op.add_column(sa.Column("years", sa.SmallInteger(), nullable=False, server_default="1"))
    create_table("fixed_assets", column("id"), ref("org_id", "organisations"), column("site_id"), string("label", 200),
                 string("account_number", 20), date("acquired_on"), column("cost"), string("currency", 3),
                 column("useful_life", sa.SmallInteger()), ref("grant_id", "grants", null=True),
                 string("source_key", 200), timestamp("created_at"),
                 check("cost_positive", "cost > 0"), check("useful_life", "useful_life BETWEEN 1 AND 50"),
                 foreign_key(["site_id", "org_id"], "sites", ["id", "org_id"]),
                 unique("org_id", "source_key"), index("grant_id"))
    add_accounts(ACCOUNTS)


def downgrade() -> None:
    # The accounts stay: the chart only grows (an account in use cannot go, one unused harms nothing).
    op.drop_table("fixed_assets")
    # Dropped in place (SQLite 3.35+ too): a rebuilt table would not give back 0019's schema to the letter.
    op.execute("ALTER TABLE grants DROP COLUMN years")
    op.execute("ALTER TABLE grants DROP COLUMN nature")
