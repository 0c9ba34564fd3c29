"""annual accounts: the accounts of the contributions in kind (classe 8) in every organisation's chart

The annual accounts (règlement ANC 2018-06) show, below the result, the voluntary contributions
in kind: their uses (86: secours en nature, mise à disposition gratuite de biens, prestations,
personnel bénévole) and their sources (87: bénévolat, prestations en nature, dons en nature).
Staff record them (``funding ledger record volunteering|goods-lent|goods-given``); the accounts
go into every existing organisation's chart, as new organisations get them.
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"

ACCOUNTS = [
    ("860", "Secours en nature"),
    ("861", "Mise à disposition gratuite de biens"),
    ("862", "Prestations"),
    ("864", "Personnel bénévole"),
    ("870", "Bénévolat"),
    ("871", "Prestations en nature"),
    ("875", "Dons en nature"),
]


def upgrade() -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for number, label in ACCOUNTS:
        op.get_bind().execute(sa.text(
            "INSERT INTO accounts (org_id, number, label, active, created_at) "
            "SELECT id, CAST(:number AS VARCHAR(20)), CAST(:label AS VARCHAR(200)), :yes, :now "
            "FROM organisations o WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.org_id = o.id AND a.number = CAST(:number AS VARCHAR(20)))")
            .bindparams(sa.bindparam("now", type_=sa.DateTime()), sa.bindparam("yes", type_=sa.Boolean()),
                       sa.bindparam("number", type_=sa.String()), sa.bindparam("label", type_=sa.String())),
            {"number": number, "label": label, "yes": True, "now": now})


def downgrade() -> None:
    # The accounts stay: the chart only grows (an account in use cannot go, one unused harms nothing).
    pass
