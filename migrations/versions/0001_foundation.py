"""foundation: organisations, ledger, users, outbox

Database-side guards of the ledger (see funding/ledger/models.py): they refuse an unbalanced
validation, a gap in numbering, a broken chain link, a post into a closed period, and any
change to a validated entry, its postings or a closing.
"""

import sqlalchemy as sa
from alembic import op

from funding.ddl import (
    Guards,
    Trigger,
    boolean,
    check,
    column,
    create_table,
    date,
    drop_tables,
    foreign_key,
    index,
    no_truncate,
    ref,
    string,
    text,
    timestamp,
    unique,
)
from funding.migrate import sql_function, sqlite_trigger

revision = "0001"
down_revision = None

FUNCTIONS = ("ledger_entry_insert_guard", "ledger_entry_update_guard", "ledger_entry_advance_head",
             "ledger_entry_delete_guard", "ledger_posting_guard", "ledger_frozen", "ledger_closing_insert_guard",
             "ledger_closing_advance_head", "ledger_head_guard")
TRIGGERS = [
    Trigger("entries_insert_guard", "BEFORE INSERT ON entries", "ledger_entry_insert_guard"),
    Trigger("entries_update_guard", "BEFORE UPDATE ON entries", "ledger_entry_update_guard"),
    Trigger("entries_advance_head", "AFTER UPDATE ON entries", "ledger_entry_advance_head",
            when="OLD.number IS NULL AND NEW.number IS NOT NULL"),
    Trigger("entries_delete_guard", "BEFORE DELETE ON entries", "ledger_entry_delete_guard"),
    Trigger("postings_guard", "BEFORE INSERT OR UPDATE OR DELETE ON postings", "ledger_posting_guard"),
    Trigger("closings_insert_guard", "BEFORE INSERT ON closings", "ledger_closing_insert_guard"),
    Trigger("closings_advance_head", "AFTER INSERT ON closings", "ledger_closing_advance_head"),
    Trigger("closings_frozen", "BEFORE UPDATE OR DELETE ON closings", "ledger_frozen"),
    Trigger("ledger_heads_guard", "BEFORE UPDATE OR DELETE ON ledger_heads", "ledger_head_guard"),
    *(no_truncate(table, "ledger_frozen") for table in ("entries", "postings", "closings")),
]
SQLITE_TRIGGERS = (
    "entries_insert_guard", "entries_frozen", "entries_validate", "entries_advance_head", "entries_delete_guard",
    "postings_insert_guard", "postings_update_guard", "postings_delete_guard", "closings_insert_guard",
    "closings_advance_head", "closings_frozen_update", "closings_frozen_delete", "ledger_heads_guard",
    "ledger_heads_no_delete",
)
GUARDS = Guards(functions=[sql_function(name, 1) for name in FUNCTIONS], triggers=TRIGGERS,
                sqlite=[sqlite_trigger(name, 1) for name in SQLITE_TRIGGERS])


def upgrade() -> None:
    create_table("journals", string("code", 4), string("label", 100), primary_key=("code",))
    create_table("organisations", column("id"), string("name", 200), string("siren", 9),
                 string("rna", 10, null=True), string("vat_number", 20, null=True), boolean("vat_liable"),
                 boolean("general_interest"), text("address"), string("currency", 3),
                 column("fiscal_year_start_month"), timestamp("created_at"),
                 check("fiscal_year_start", "fiscal_year_start_month BETWEEN 1 AND 12"),
                 check("siren_length", "length(siren) = 9"), unique("siren"))
    create_table("accounts", column("id"), ref("org_id", "organisations"), string("number", 20),
                 string("label", 200), boolean("active"), timestamp("created_at"),
                 check("number_length", "length(number) >= 3"), unique("org_id", "number"))
    create_table("aux_accounts", column("id"), ref("org_id", "organisations"), string("code", 30),
                 string("label", 200), timestamp("created_at"), unique("org_id", "code"))
    create_table("closings", column("id"), ref("org_id", "organisations"), string("kind", 10), string("period", 7),
                 date("start_date"), date("end_date"), column("first_number", null=True),
                 column("last_number", null=True), column("entry_count"), text("totals"), text("period_total"),
                 text("fiscal_year_total"), text("grand_total"), timestamp("closed_at"), string("closed_by", 200),
                 string("prev_hash", 64), string("hash", 64), unique("org_id", "kind", "period"))
    create_table("ledger_heads", ref("org_id", "organisations"), column("last_number"), string("last_hash", 64),
                 date("closed_through", null=True), string("last_closing_hash", 64), primary_key=("org_id",))
    create_table("sites", column("id"), ref("org_id", "organisations"), string("slug", 60), string("name", 200),
                 string("town", 120), boolean("is_central"), timestamp("created_at"), unique("id", "org_id"),
                 unique("slug"), index("org_id"))
    create_table("users", column("id"), string("email", 254), string("name", 200), string("role", 20),
                 ref("org_id", "organisations", null=True), string("locale", 5), boolean("active"),
                 timestamp("created_at"), check("role", "role IN ('admin', 'staff', 'accountant', 'member')"),
                 unique("email"))
    create_table("emails", column("id"), string("dedupe_key", 200), ref("user_id", "users", null=True),
                 string("to_addr", 254), string("subject", 300), text("body_text"), text("body_html", null=True),
                 string("status", 10), column("attempts"), text("last_error", null=True), timestamp("created_at"),
                 timestamp("next_attempt_at"), timestamp("sent_at", null=True),
                 check("status", "status IN ('pending', 'sending', 'sent', 'failed', 'unknown')"),
                 unique("dedupe_key"), index("status", "next_attempt_at", name="ix_emails_status_next"),
                 index("user_id"))
    create_table("grants", column("id"), ref("org_id", "organisations"), ref("site_id", "sites"),
                 string("funder_name", 200), string("funder_siret", 14, null=True), string("reference", 100),
                 date("convention_date"), string("object", 256), column("amount"), string("currency", 3),
                 string("conditions", 20), string("payment_dates", 60), string("scheme", 200),
                 timestamp("created_at"), check("amount_positive", "amount > 0"), unique("org_id", "reference"))
    create_table("login_tokens", string("id", 64), ref("user_id", "users"), timestamp("created_at"),
                 timestamp("expires_at"), timestamp("used_at", null=True), index("user_id"))
    create_table("entries", column("id"), ref("org_id", "organisations"), column("site_id"),
                 string("journal_code", 4), column("number", null=True), date("entry_date"), string("label", 200),
                 string("piece_ref", 100), date("piece_date"), string("funding_source", 16),
                 ref("reverses_id", "entries", null=True), string("source_key", 200, null=True),
                 ref("grant_id", "grants", null=True), string("created_by", 200), timestamp("created_at"),
                 timestamp("validated_at", null=True), string("prev_hash", 64, null=True),
                 string("hash", 64, null=True),
                 check("funding_source", "funding_source IN ('public', 'private', 'crowdfunding', 'self', 'internal')"),
                 check("validated_fields", "(number IS NULL AND hash IS NULL AND validated_at IS NULL) OR (number IS NOT NULL AND hash IS NOT NULL AND prev_hash IS NOT NULL AND validated_at IS NOT NULL)"),
                 foreign_key(["site_id", "org_id"], "sites", ["id", "org_id"]),
                 foreign_key(["journal_code"], "journals", ["code"]), unique("id", "org_id"),
                 unique("org_id", "number"), unique("org_id", "source_key"), unique("reverses_id"),
                 index("grant_id"), index("org_id", "entry_date", name="ix_entries_org_date"))
    create_table("postings", column("id"), column("entry_id"), column("org_id"),
                 column("line_no", sa.SmallInteger()), string("account_number", 20),
                 string("aux_code", 30, null=True), column("amount"), string("currency", 3),
                 string("label", 200, null=True), check("amount_nonzero", "amount <> 0"),
                 check("currency_code", "length(currency) = 3"),
                 foreign_key(["org_id", "aux_code"], "aux_accounts", ["org_id", "code"]),
                 foreign_key(["entry_id", "org_id"], "entries", ["id", "org_id"]),
                 foreign_key(["org_id", "account_number"], "accounts", ["org_id", "number"]),
                 unique("entry_id", "line_no"), index("org_id", "account_number", name="ix_postings_org_account"))

    op.bulk_insert(
        sa.table("journals", sa.column("code", sa.String), sa.column("label", sa.String)),
        [
            {"code": "ST", "label": "Stripe"},
            {"code": "VT", "label": "Ventes"},
            {"code": "CA", "label": "Caisse (bar)"},
            {"code": "BQ", "label": "Banque"},
            {"code": "OD", "label": "Opérations diverses"},
            {"code": "AN", "label": "À-nouveaux"},
        ],
    )
    GUARDS.install()


def downgrade() -> None:
    GUARDS.remove()
    drop_tables("postings", "entries", "login_tokens", "grants", "emails", "users", "sites", "ledger_heads",
                "closings", "aux_accounts", "accounts", "organisations", "journals")
