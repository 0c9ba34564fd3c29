"""foundation: organisations, ledger, users, outbox

Database-side guards of the ledger (see funding/ledger/models.py): they refuse an unbalanced
validation, a gap in numbering, a broken chain link, a post into a closed period, and any
change to a validated entry, its postings or a closing.
"""

import sqlalchemy as sa
from alembic import op

from funding import ddl
from funding.migrate import sql_function, sqlite_trigger

revision = "0001"
down_revision = None

FUNCTIONS = ("ledger_entry_insert_guard", "ledger_entry_update_guard", "ledger_entry_advance_head",
             "ledger_entry_delete_guard", "ledger_posting_guard", "ledger_frozen", "ledger_closing_insert_guard",
             "ledger_closing_advance_head", "ledger_head_guard")
TRIGGERS = [
    ddl.Trigger("entries_insert_guard", "BEFORE INSERT ON entries", "ledger_entry_insert_guard"),
    ddl.Trigger("entries_update_guard", "BEFORE UPDATE ON entries", "ledger_entry_update_guard"),
    ddl.Trigger("entries_advance_head", "AFTER UPDATE ON entries", "ledger_entry_advance_head",
                when="OLD.number IS NULL AND NEW.number IS NOT NULL"),
    ddl.Trigger("entries_delete_guard", "BEFORE DELETE ON entries", "ledger_entry_delete_guard"),
    ddl.Trigger("postings_guard", "BEFORE INSERT OR UPDATE OR DELETE ON postings", "ledger_posting_guard"),
    ddl.Trigger("closings_insert_guard", "BEFORE INSERT ON closings", "ledger_closing_insert_guard"),
    ddl.Trigger("closings_advance_head", "AFTER INSERT ON closings", "ledger_closing_advance_head"),
    ddl.Trigger("closings_frozen", "BEFORE UPDATE OR DELETE ON closings", "ledger_frozen"),
    ddl.Trigger("ledger_heads_guard", "BEFORE UPDATE OR DELETE ON ledger_heads", "ledger_head_guard"),
    *(ddl.no_truncate(table, "ledger_frozen") for table in ("entries", "postings", "closings")),
]
SQLITE_TRIGGERS = (
    "entries_insert_guard", "entries_frozen", "entries_validate", "entries_advance_head", "entries_delete_guard",
    "postings_insert_guard", "postings_update_guard", "postings_delete_guard", "closings_insert_guard",
    "closings_advance_head", "closings_frozen_update", "closings_frozen_delete", "ledger_heads_guard",
    "ledger_heads_no_delete",
)
GUARDS = ddl.Guards(functions=[sql_function(name, 1) for name in FUNCTIONS], triggers=TRIGGERS,
                    sqlite=[sqlite_trigger(name, 1) for name in SQLITE_TRIGGERS])


def upgrade() -> None:
    ddl.create_table("journals", ddl.string("code", 4), ddl.string("label", 100), primary_key=("code",))
    ddl.create_table("organisations", ddl.column("id"), ddl.string("name", 200), ddl.string("siren", 9),
                     ddl.string("rna", 10, null=True), ddl.string("vat_number", 20, null=True),
                     ddl.boolean("vat_liable"), ddl.boolean("general_interest"), ddl.text("address"),
                     ddl.string("currency", 3), ddl.column("fiscal_year_start_month"), ddl.timestamp("created_at"),
                     ddl.check("fiscal_year_start", "fiscal_year_start_month BETWEEN 1 AND 12"),
                     ddl.check("siren_length", "length(siren) = 9"), ddl.unique("siren"))
    ddl.create_table("accounts", ddl.column("id"), ddl.ref("org_id", "organisations"), ddl.string("number", 20),
                     ddl.string("label", 200), ddl.boolean("active"), ddl.timestamp("created_at"),
                     ddl.check("number_length", "length(number) >= 3"), ddl.unique("org_id", "number"))
    ddl.create_table("aux_accounts", ddl.column("id"), ddl.ref("org_id", "organisations"), ddl.string("code", 30),
                     ddl.string("label", 200), ddl.timestamp("created_at"), ddl.unique("org_id", "code"))
    ddl.create_table("closings", ddl.column("id"), ddl.ref("org_id", "organisations"), ddl.string("kind", 10),
                     ddl.string("period", 7), ddl.date("start_date"), ddl.date("end_date"),
                     ddl.column("first_number", null=True), ddl.column("last_number", null=True),
                     ddl.column("entry_count"), ddl.text("totals"), ddl.text("period_total"),
                     ddl.text("fiscal_year_total"), ddl.text("grand_total"), ddl.timestamp("closed_at"),
                     ddl.string("closed_by", 200), ddl.string("prev_hash", 64), ddl.string("hash", 64),
                     ddl.unique("org_id", "kind", "period"))
    ddl.create_table("ledger_heads", ddl.ref("org_id", "organisations"), ddl.column("last_number"),
                     ddl.string("last_hash", 64), ddl.date("closed_through", null=True),
                     ddl.string("last_closing_hash", 64), primary_key=("org_id",))
    ddl.create_table("sites", ddl.column("id"), ddl.ref("org_id", "organisations"), ddl.string("slug", 60),
                     ddl.string("name", 200), ddl.string("town", 120), ddl.boolean("is_central"),
                     ddl.timestamp("created_at"), ddl.unique("id", "org_id"), ddl.unique("slug"), ddl.index("org_id"))
    ddl.create_table("users", ddl.column("id"), ddl.string("email", 254), ddl.string("name", 200),
                     ddl.string("role", 20), ddl.ref("org_id", "organisations", null=True), ddl.string("locale", 5),
                     ddl.boolean("active"), ddl.timestamp("created_at"),
                     ddl.check("role", "role IN ('admin', 'staff', 'accountant', 'member')"), ddl.unique("email"))
    ddl.create_table("emails", ddl.column("id"), ddl.string("dedupe_key", 200), ddl.ref("user_id", "users", null=True),
                     ddl.string("to_addr", 254), ddl.string("subject", 300), ddl.text("body_text"),
                     ddl.text("body_html", null=True), ddl.string("status", 10), ddl.column("attempts"),
                     ddl.text("last_error", null=True), ddl.timestamp("created_at"), ddl.timestamp("next_attempt_at"),
                     ddl.timestamp("sent_at", null=True),
                     ddl.check("status", "status IN ('pending', 'sending', 'sent', 'failed', 'unknown')"),
                     ddl.unique("dedupe_key"), ddl.index("status", "next_attempt_at", name="ix_emails_status_next"),
                     ddl.index("user_id"))
    ddl.create_table("grants", ddl.column("id"), ddl.ref("org_id", "organisations"), ddl.ref("site_id", "sites"),
                     ddl.string("funder_name", 200), ddl.string("funder_siret", 14, null=True),
                     ddl.string("reference", 100), ddl.date("convention_date"), ddl.string("object", 256),
                     ddl.column("amount"), ddl.string("currency", 3), ddl.string("conditions", 20),
                     ddl.string("payment_dates", 60), ddl.string("scheme", 200), ddl.timestamp("created_at"),
                     ddl.check("amount_positive", "amount > 0"), ddl.unique("org_id", "reference"))
    ddl.create_table("login_tokens", ddl.string("id", 64), ddl.ref("user_id", "users"), ddl.timestamp("created_at"),
                     ddl.timestamp("expires_at"), ddl.timestamp("used_at", null=True), ddl.index("user_id"))
    ddl.create_table("entries", ddl.column("id"), ddl.ref("org_id", "organisations"), ddl.column("site_id"),
                     ddl.string("journal_code", 4), ddl.column("number", null=True), ddl.date("entry_date"),
                     ddl.string("label", 200), ddl.string("piece_ref", 100), ddl.date("piece_date"),
                     ddl.string("funding_source", 16), ddl.ref("reverses_id", "entries", null=True),
                     ddl.string("source_key", 200, null=True), ddl.ref("grant_id", "grants", null=True),
                     ddl.string("created_by", 200), ddl.timestamp("created_at"),
                     ddl.timestamp("validated_at", null=True), ddl.string("prev_hash", 64, null=True),
                     ddl.string("hash", 64, null=True),
                     ddl.check("funding_source", "funding_source IN ('public', 'private', 'crowdfunding', 'self', 'internal')"),
                     ddl.check("validated_fields", "(number IS NULL AND hash IS NULL AND validated_at IS NULL)"
                                                   " OR (number IS NOT NULL AND hash IS NOT NULL AND prev_hash IS NOT NULL AND validated_at IS NOT NULL)"),
                     ddl.foreign_key(["site_id", "org_id"], "sites", ["id", "org_id"]),
                     ddl.foreign_key(["journal_code"], "journals", ["code"]), ddl.unique("id", "org_id"),
                     ddl.unique("org_id", "number"), ddl.unique("org_id", "source_key"), ddl.unique("reverses_id"),
                     ddl.index("grant_id"), ddl.index("org_id", "entry_date", name="ix_entries_org_date"))
    ddl.create_table("postings", ddl.column("id"), ddl.column("entry_id"), ddl.column("org_id"),
                     ddl.column("line_no", sa.SmallInteger()), ddl.string("account_number", 20),
                     ddl.string("aux_code", 30, null=True), ddl.column("amount"), ddl.string("currency", 3),
                     ddl.string("label", 200, null=True), ddl.check("amount_nonzero", "amount <> 0"),
                     ddl.check("currency_code", "length(currency) = 3"),
                     ddl.foreign_key(["org_id", "aux_code"], "aux_accounts", ["org_id", "code"]),
                     ddl.foreign_key(["entry_id", "org_id"], "entries", ["id", "org_id"]),
                     ddl.foreign_key(["org_id", "account_number"], "accounts", ["org_id", "number"]),
                     ddl.unique("entry_id", "line_no"),
                     ddl.index("org_id", "account_number", name="ix_postings_org_account"))

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
    ddl.drop_tables("postings", "entries", "login_tokens", "grants", "emails", "users", "sites", "ledger_heads",
                    "closings", "aux_accounts", "accounts", "organisations", "journals")
