"""Bar: products, till heads, sale lines (hash-chained, append-only), walk-in tickets, batches, closings, archives"""

from funding.ddl import (
    Guards,
    Trigger,
    abort,
    boolean,
    check,
    column,
    create_table,
    date,
    drop_tables,
    index,
    no_truncate,
    ref,
    string,
    text,
    timestamp,
    unique,
)
from funding.migrate import sql_function

revision = "0006"
down_revision = "0002"

# Database-side guards of the till (see funding/bar/models.py): a sale line is numbered
# and chained to its site's head or refused, and never changes afterwards; claims of lines
# by batches, closings and archives are append-only; closings and archives are chained;
# the head only moves forwards.

FUNCTIONS = ("bar_line_insert_guard", "bar_line_advance_head", "bar_frozen", "bar_closing_insert_guard",
             "bar_closing_advance_head", "bar_archive_insert_guard", "bar_archive_advance_head", "bar_head_guard")
TRIGGERS = [
    Trigger("bar_lines_insert_guard", "BEFORE INSERT ON bar_sale_lines", "bar_line_insert_guard"),
    Trigger("bar_lines_advance_head", "AFTER INSERT ON bar_sale_lines", "bar_line_advance_head"),
    Trigger("bar_lines_frozen", "BEFORE UPDATE OR DELETE ON bar_sale_lines", "bar_frozen"),
    no_truncate("bar_sale_lines", "bar_frozen", name="bar_lines_no_truncate"),
    Trigger("bar_claims_frozen", "BEFORE UPDATE OR DELETE ON bar_batch_lines", "bar_frozen"),
    Trigger("bar_closings_insert_guard", "BEFORE INSERT ON bar_closings", "bar_closing_insert_guard"),
    Trigger("bar_closings_advance_head", "AFTER INSERT ON bar_closings", "bar_closing_advance_head"),
    Trigger("bar_closings_frozen", "BEFORE UPDATE OR DELETE ON bar_closings", "bar_frozen"),
    no_truncate("bar_closings", "bar_frozen"),
    Trigger("bar_archives_insert_guard", "BEFORE INSERT ON bar_archives", "bar_archive_insert_guard"),
    Trigger("bar_archives_advance_head", "AFTER INSERT ON bar_archives", "bar_archive_advance_head"),
    Trigger("bar_archives_frozen", "BEFORE UPDATE OR DELETE ON bar_archives", "bar_frozen"),
    Trigger("bar_heads_guard", "BEFORE UPDATE OR DELETE ON bar_heads", "bar_head_guard"),
]

FROZEN = "bar: rows are never changed or deleted; record a cancelling line instead"


def frozen(prefix: str, table: str) -> list[str]:
    """SQLite's refusals of any change to ``table``'s rows (PostgreSQL's ``bar_frozen``)."""
    return [f"CREATE TRIGGER {prefix}_no_{event} BEFORE {event.upper()} ON {table} BEGIN {abort(FROZEN)}; END"
            for event in ("update", "delete")]


SQLITE = [
    f"""CREATE TRIGGER bar_lines_insert_guard BEFORE INSERT ON bar_sale_lines
BEGIN
  {abort("bar: site has no till")}
    WHERE NOT EXISTS (SELECT 1 FROM bar_heads WHERE site_id = NEW.site_id);
  {abort("bar: sale line breaks the gap-free sequence")}
    WHERE NEW.seq <> (SELECT last_seq + 1 FROM bar_heads WHERE site_id = NEW.site_id);
  {abort("bar: sale line is not chained to the previous line")}
    WHERE NEW.prev_hash <> (SELECT last_hash FROM bar_heads WHERE site_id = NEW.site_id);
  {abort("bar: the day is closed")}
    WHERE NEW.day <= (SELECT closed_through FROM bar_heads WHERE site_id = NEW.site_id);
END""",  # noqa: S608 — only messages written here are interpolated, never input
    """CREATE TRIGGER bar_lines_advance_head AFTER INSERT ON bar_sale_lines
BEGIN
  UPDATE bar_heads SET last_seq = NEW.seq, last_hash = NEW.hash WHERE site_id = NEW.site_id;
END""",
    *frozen("bar_lines", "bar_sale_lines"),
    *frozen("bar_claims", "bar_batch_lines"),
    f"""CREATE TRIGGER bar_closings_insert_guard BEFORE INSERT ON bar_closings
BEGIN
  {abort("bar: closing is not chained to the previous closing")}
    WHERE NEW.prev_hash IS NOT (SELECT last_closing_hash FROM bar_heads WHERE site_id = NEW.site_id);
  {abort("bar: the day is already closed")}
    WHERE NEW.kind = 'day' AND NEW.end_date <= (SELECT closed_through FROM bar_heads WHERE site_id = NEW.site_id);
END""",  # noqa: S608 — only messages written here are interpolated, never input
    """CREATE TRIGGER bar_closings_advance_head AFTER INSERT ON bar_closings
BEGIN
  UPDATE bar_heads SET last_closing_hash = NEW.hash,
    closed_through = CASE WHEN NEW.kind = 'day' THEN NEW.end_date ELSE closed_through END
  WHERE site_id = NEW.site_id;
END""",
    *frozen("bar_closings", "bar_closings"),
    f"""CREATE TRIGGER bar_archives_insert_guard BEFORE INSERT ON bar_archives
BEGIN
  {abort("bar: archive is not chained to the previous archive")}
    WHERE NEW.prev_hash IS NOT (SELECT last_archive_hash FROM bar_heads WHERE site_id = NEW.site_id);
END""",  # noqa: S608 — only messages written here are interpolated, never input
    """CREATE TRIGGER bar_archives_advance_head AFTER INSERT ON bar_archives
BEGIN
  UPDATE bar_heads SET last_archive_hash = NEW.hash WHERE site_id = NEW.site_id;
END""",
    *frozen("bar_archives", "bar_archives"),
    f"""CREATE TRIGGER bar_heads_guard BEFORE UPDATE ON bar_heads
WHEN NEW.last_seq NOT IN (OLD.last_seq, OLD.last_seq + 1)
  OR (OLD.closed_through IS NOT NULL AND (NEW.closed_through IS NULL OR NEW.closed_through < OLD.closed_through))
BEGIN {abort("bar: a till head only moves forward")}; END""",
    f"CREATE TRIGGER bar_heads_no_delete BEFORE DELETE ON bar_heads BEGIN {abort('bar: a till head cannot be deleted')}; END",
]
GUARDS = Guards(functions=[sql_function(name, 1) for name in FUNCTIONS], triggers=TRIGGERS, sqlite=SQLITE)


def upgrade() -> None:
    create_table("bar_archives", column("id"), ref("site_id", "sites"), ref("org_id", "organisations"),
                 string("period", 10), string("filename", 120), text("content"), string("sha256", 64),
                 column("line_count"), timestamp("created_at"), string("created_by", 200), string("prev_hash", 64),
                 string("hash", 64), unique("site_id", "period"))
    create_table("bar_closings", column("id"), ref("site_id", "sites"), ref("org_id", "organisations"),
                 string("kind", 5), string("period", 10), date("start_date"), date("end_date"),
                 column("first_seq", null=True), column("last_seq", null=True), column("line_count"),
                 column("cancel_count"), text("totals"), text("by_mode"), text("cancellations"),
                 text("period_total"), text("fiscal_year_total"), text("grand_total"),
                 string("entry_key", 200, null=True), timestamp("closed_at"), string("closed_by", 200),
                 string("prev_hash", 64), string("hash", 64), check("kind", "kind IN ('day', 'month', 'year')"),
                 unique("site_id", "kind", "period"))
    create_table("bar_heads", ref("site_id", "sites"), ref("org_id", "organisations"), column("last_seq"),
                 string("last_hash", 64), string("last_closing_hash", 64), string("last_archive_hash", 64),
                 date("closed_through", null=True), primary_key=("site_id",))
    create_table("bar_products", column("id"), ref("site_id", "sites"), string("name", 80), string("category", 40),
                 column("price"), string("currency", 3), column("vat_rate"), boolean("active"), column("position"),
                 timestamp("created_at"), timestamp("updated_at"), check("price_positive", "price > 0"),
                 check("vat_rate", "vat_rate IN (55, 100, 200)"), unique("site_id", "name"), index("site_id"))
    create_table("bar_batches", column("id"), ref("site_id", "sites"), ref("org_id", "organisations"),
                 ref("member_id", "users"), string("key", 60), column("amount"), string("currency", 3),
                 column("line_count"), string("status", 8), string("method", 20, null=True),
                 string("stripe_invoice_item_id", 255, null=True), string("stripe_invoice_id", 255, null=True),
                 string("stripe_payment_intent_id", 255, null=True), ref("payment_id", "payments", null=True),
                 text("last_error", null=True), timestamp("created_at"), timestamp("billed_at", null=True),
                 timestamp("paid_at", null=True),
                 check("status", "status IN ('ready', 'billed', 'due', 'paid', 'empty')"),
                 check("amount_not_negative", "amount >= 0"), unique("site_id", "member_id", "key"),
                 unique("stripe_invoice_item_id"), unique("stripe_payment_intent_id"), index("member_id"),
                 index("status"), index("stripe_invoice_id"))
    create_table("bar_tickets", column("id"), ref("site_id", "sites"), ref("org_id", "organisations"),
                 string("status", 10), ref("payment_id", "payments", null=True), string("created_by", 200),
                 timestamp("created_at"), timestamp("paid_at", null=True),
                 check("status", "status IN ('open', 'paid', 'cancelled')"), unique("payment_id"), index("site_id"))
    create_table("bar_sale_lines", column("id"), ref("site_id", "sites"), ref("org_id", "organisations"),
                 column("seq"), date("day"), timestamp("recorded_at"), string("kind", 6),
                 ref("member_id", "users", null=True), ref("ticket_id", "bar_tickets", null=True),
                 ref("product_id", "bar_products"), string("label", 80), string("category", 40),
                 column("unit_price"), column("quantity"), column("amount"), column("vat_rate"),
                 string("currency", 3), ref("cancels_id", "bar_sale_lines", null=True), string("reason", 200),
                 string("recorded_by", 200), string("prev_hash", 64), string("hash", 64),
                 check("shape", "(kind = 'sale' AND cancels_id IS NULL AND quantity > 0) OR (kind = 'cancel' AND cancels_id IS NOT NULL AND quantity < 0 AND length(reason) > 0)"),
                 check("kind", "kind IN ('sale', 'cancel')"),
                 check("one_holder", "(member_id IS NULL) <> (ticket_id IS NULL)"),
                 check("amount", "amount = unit_price * quantity"), check("unit_price_positive", "unit_price > 0"),
                 check("vat_rate", "vat_rate IN (55, 100, 200)"), unique("cancels_id"), unique("site_id", "seq"),
                 index("site_id", "day", name="ix_bar_sale_lines_site_day"),
                 index("site_id", "member_id", name="ix_bar_sale_lines_site_member"), index("ticket_id"))
    create_table("bar_batch_lines", ref("sale_line_id", "bar_sale_lines", autoincrement=False),
                 ref("batch_id", "bar_batches"), index("batch_id"), primary_key=("sale_line_id",))
    GUARDS.install()


def downgrade() -> None:
    GUARDS.remove()
    drop_tables("bar_batch_lines", "bar_sale_lines", "bar_tickets", "bar_batches", "bar_products", "bar_heads",
                "bar_closings", "bar_archives")
