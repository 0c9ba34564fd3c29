"""credit notes: a refunded or lost invoice gets its avoir, numbered by Stripe and booked as the sale's mirror

A refund or a lost dispute on a member's invoice calls for a credit note (one per cause, by its
Stripe id); the worker issues it in Stripe (key: this row), the books take it as the sale's
mirror, with its number.
"""

from alembic import op

from funding.ddl import check, column, create_table, index, ref, string, text, timestamp, unique

revision = "0018"
down_revision = "0017"


def upgrade() -> None:
    create_table("coworking_credit_notes", column("id"), ref("invoice_id", "coworking_invoices"),
                 ref("member_id", "coworking_members"), ref("site_id", "sites"), string("cause", 8),
                 string("cause_id", 255), column("amount"), string("currency", 3), string("status", 8),
                 string("stripe_credit_note_id", 255, null=True), string("number", 60, null=True), text("lines"),
                 timestamp("issued_at", null=True), timestamp("voided_at", null=True), text("pdf_url", null=True),
                 text("last_error", null=True), timestamp("created_at"),
                 check("status", "status IN ('pending', 'refused', 'issued', 'void')"),
                 check("cause", "cause IN ('refund', 'dispute', 'stripe')"),
                 check("amount_positive", "amount > 0"), unique("cause_id"), unique("stripe_credit_note_id"),
                 index("invoice_id"), index("member_id"), index("status", name="ix_coworking_credit_notes_status"))


def downgrade() -> None:
    op.drop_table("coworking_credit_notes")
