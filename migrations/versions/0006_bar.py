"""Bar: products, till heads, sale lines (hash-chained, append-only), walk-in tickets, batches, closings, archives"""

from funding import ddl
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
    ddl.Trigger("bar_lines_insert_guard", "BEFORE INSERT ON bar_sale_lines", "bar_line_insert_guard"),
    ddl.Trigger("bar_lines_advance_head", "AFTER INSERT ON bar_sale_lines", "bar_line_advance_head"),
    ddl.Trigger("bar_lines_frozen", "BEFORE UPDATE OR DELETE ON bar_sale_lines", "bar_frozen"),
    ddl.no_truncate("bar_sale_lines", "bar_frozen", name="bar_lines_no_truncate"),
    ddl.Trigger("bar_claims_frozen", "BEFORE UPDATE OR DELETE ON bar_batch_lines", "bar_frozen"),
    ddl.Trigger("bar_closings_insert_guard", "BEFORE INSERT ON bar_closings", "bar_closing_insert_guard"),
    ddl.Trigger("bar_closings_advance_head", "AFTER INSERT ON bar_closings", "bar_closing_advance_head"),
    ddl.Trigger("bar_closings_frozen", "BEFORE UPDATE OR DELETE ON bar_closings", "bar_frozen"),
    ddl.no_truncate("bar_closings", "bar_frozen"),
    ddl.Trigger("bar_archives_insert_guard", "BEFORE INSERT ON bar_archives", "bar_archive_insert_guard"),
    ddl.Trigger("bar_archives_advance_head", "AFTER INSERT ON bar_archives", "bar_archive_advance_head"),
    ddl.Trigger("bar_archives_frozen", "BEFORE UPDATE OR DELETE ON bar_archives", "bar_frozen"),
    ddl.Trigger("bar_heads_guard", "BEFORE UPDATE OR DELETE ON bar_heads", "bar_head_guard"),
]

FROZEN = "bar: rows are never changed or deleted; record a cancelling line instead"


def frozen(prefix: str, table: str) -> list[str]:
    """SQLite's refusals of any change to ``table``'s rows (PostgreSQL's ``bar_frozen``)."""
    return [f"CREATE TRIGGER {prefix}_no_{event} BEFORE {event.upper()} ON {table} BEGIN {ddl.abort(FROZEN)}; END"
            for event in ("update", "delete")]


SQLITE = [
    f"""CREATE TRIGGER bar_lines_insert_guard BEFORE INSERT ON bar_sale_lines
BEGIN
  {ddl.abort("bar: site has no till")}
    WHERE NOT EXISTS (SELECT 1 FROM bar_heads WHERE site_id = NEW.site_id);
  {ddl.abort("bar: sale line breaks the gap-free sequence")}
    WHERE NEW.seq <> (SELECT last_seq + 1 FROM bar_heads WHERE site_id = NEW.site_id);
  {ddl.abort("bar: sale line is not chained to the previous line")}
    WHERE NEW.prev_hash <> (SELECT last_hash FROM bar_heads WHERE site_id = NEW.site_id);
  {ddl.abort("bar: the day is closed")}
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
  {ddl.abort("bar: closing is not chained to the previous closing")}
    WHERE NEW.prev_hash IS NOT (SELECT last_closing_hash FROM bar_heads WHERE site_id = NEW.site_id);
  {ddl.abort("bar: the day is already closed")}
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
  {ddl.abort("bar: archive is not chained to the previous archive")}
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
BEGIN {ddl.abort("bar: a till head only moves forward")}; END""",
    f"CREATE TRIGGER bar_heads_no_delete BEFORE DELETE ON bar_heads BEGIN {ddl.abort('bar: a till head cannot be deleted')}; END",
]
GUARDS = ddl.Guards(functions=[sql_function(name, 1) for name in FUNCTIONS], triggers=TRIGGERS, sqlite=SQLITE)


def upgrade() -> None:
    ddl.create_table("bar_archives", ddl.column("id"), ddl.ref("site_id", "sites"), ddl.ref("org_id", "organisations"),
                     ddl.string("period", 10), ddl.string("filename", 120), ddl.text("content"),
                     ddl.string("sha256", 64), ddl.column("line_count"), ddl.timestamp("created_at"),
                     ddl.string("created_by", 200), ddl.string("prev_hash", 64), ddl.string("hash", 64),
                     ddl.unique("site_id", "period"))
    ddl.create_table("bar_closings", ddl.column("id"), ddl.ref("site_id", "sites"), ddl.ref("org_id", "organisations"),
                     ddl.string("kind", 5), ddl.string("period", 10), ddl.date("start_date"), ddl.date("end_date"),
                     ddl.column("first_seq", null=True), ddl.column("last_seq", null=True), ddl.column("line_count"),
                     ddl.column("cancel_count"), ddl.text("totals"), ddl.text("by_mode"), ddl.text("cancellations"),
                     ddl.text("period_total"), ddl.text("fiscal_year_total"), ddl.text("grand_total"),
                     ddl.string("entry_key", 200, null=True), ddl.timestamp("closed_at"), ddl.string("closed_by", 200),
                     ddl.string("prev_hash", 64), ddl.string("hash", 64),
                     ddl.check("kind", "kind IN ('day', 'month', 'year')"), ddl.unique("site_id", "kind", "period"))
    ddl.create_table("bar_heads", ddl.ref("site_id", "sites"), ddl.ref("org_id", "organisations"),
                     ddl.column("last_seq"), ddl.string("last_hash", 64), ddl.string("last_closing_hash", 64),
                     ddl.string("last_archive_hash", 64), ddl.date("closed_through", null=True),
                     primary_key=("site_id",))
    ddl.create_table("bar_products", ddl.column("id"), ddl.ref("site_id", "sites"), ddl.string("name", 80),
                     ddl.string("category", 40), ddl.column("price"), ddl.string("currency", 3), ddl.column("vat_rate"),
                     ddl.boolean("active"), ddl.column("position"), ddl.timestamp("created_at"),
                     ddl.timestamp("updated_at"), ddl.check("price_positive", "price > 0"),
                     ddl.check("vat_rate", "vat_rate IN (55, 100, 200)"), ddl.unique("site_id", "name"),
                     ddl.index("site_id"))
    ddl.create_table("bar_batches", ddl.column("id"), ddl.ref("site_id", "sites"), ddl.ref("org_id", "organisations"),
                     ddl.ref("member_id", "users"), ddl.string("key", 60), ddl.column("amount"),
                     ddl.string("currency", 3), ddl.column("line_count"), ddl.string("status", 8),
                     ddl.string("method", 20, null=True), ddl.string("stripe_invoice_item_id", 255, null=True),
                     ddl.string("stripe_invoice_id", 255, null=True),
                     ddl.string("stripe_payment_intent_id", 255, null=True),
                     ddl.ref("payment_id", "payments", null=True), ddl.text("last_error", null=True),
                     ddl.timestamp("created_at"), ddl.timestamp("billed_at", null=True),
                     ddl.timestamp("paid_at", null=True),
                     ddl.check("status", "status IN ('ready', 'billed', 'due', 'paid', 'empty')"),
                     ddl.check("amount_not_negative", "amount >= 0"), ddl.unique("site_id", "member_id", "key"),
                     ddl.unique("stripe_invoice_item_id"), ddl.unique("stripe_payment_intent_id"),
                     ddl.index("member_id"), ddl.index("status"), ddl.index("stripe_invoice_id"))
    ddl.create_table("bar_tickets", ddl.column("id"), ddl.ref("site_id", "sites"), ddl.ref("org_id", "organisations"),
                     ddl.string("status", 10), ddl.ref("payment_id", "payments", null=True),
                     ddl.string("created_by", 200), ddl.timestamp("created_at"), ddl.timestamp("paid_at", null=True),
                     ddl.check("status", "status IN ('open', 'paid', 'cancelled')"), ddl.unique("payment_id"),
                     ddl.index("site_id"))
    ddl.create_table("bar_sale_lines", ddl.column("id"), ddl.ref("site_id", "sites"),
                     ddl.ref("org_id", "organisations"), ddl.column("seq"), ddl.date("day"),
                     ddl.timestamp("recorded_at"), ddl.string("kind", 6), ddl.ref("member_id", "users", null=True),
                     ddl.ref("ticket_id", "bar_tickets", null=True), ddl.ref("product_id", "bar_products"),
                     ddl.string("label", 80), ddl.string("category", 40), ddl.column("unit_price"),
                     ddl.column("quantity"), ddl.column("amount"), ddl.column("vat_rate"), ddl.string("currency", 3),
                     ddl.ref("cancels_id", "bar_sale_lines", null=True), ddl.string("reason", 200),
                     ddl.string("recorded_by", 200), ddl.string("prev_hash", 64), ddl.string("hash", 64),
                     ddl.check("shape", "(kind = 'sale' AND cancels_id IS NULL AND quantity > 0)"
                                        " OR (kind = 'cancel' AND cancels_id IS NOT NULL AND quantity < 0 AND length(reason) > 0)"),
                     ddl.check("kind", "kind IN ('sale', 'cancel')"),
                     ddl.check("one_holder", "(member_id IS NULL) <> (ticket_id IS NULL)"),
                     ddl.check("amount", "amount = unit_price * quantity"),
                     ddl.check("unit_price_positive", "unit_price > 0"),
                     ddl.check("vat_rate", "vat_rate IN (55, 100, 200)"), ddl.unique("cancels_id"),
                     ddl.unique("site_id", "seq"), ddl.index("site_id", "day", name="ix_bar_sale_lines_site_day"),
                     ddl.index("site_id", "member_id", name="ix_bar_sale_lines_site_member"), ddl.index("ticket_id"))
    ddl.create_table("bar_batch_lines", ddl.ref("sale_line_id", "bar_sale_lines", autoincrement=False),
                     ddl.ref("batch_id", "bar_batches"), ddl.index("batch_id"), primary_key=("sale_line_id",))
    GUARDS.install()


def downgrade() -> None:
    GUARDS.remove()
    ddl.drop_tables("bar_batch_lines", "bar_sale_lines", "bar_tickets", "bar_batches", "bar_products", "bar_heads",
                    "bar_closings", "bar_archives")
