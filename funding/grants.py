"""Least privilege on PostgreSQL: the service connects as a role that owns nothing.

Migrations run as the owner of the schema (``MIGRATION_DATABASE_URL``). The web process and
the worker connect as another role (``DATABASE_URL``) that ``funding db upgrade`` creates if
need be and grants exactly what each table needs, revoking anything else:

- append-only tables (the ledger's postings, closings and seals, the till's sale lines,
  closings and archives, batch lines, export logs…): ``SELECT`` and ``INSERT``;
- tables whose rows move forward (chain heads, entries being numbered, receipts being voided,
  emails being sent…): also ``UPDATE`` of the columns that move, nothing else;
- the rest, which is state rather than history: ``SELECT``, ``INSERT``, ``UPDATE``, and
  ``DELETE`` only where the service deletes (a revoked membership, a removed match).

Not being the owner, the role cannot ``TRUNCATE``, ``ALTER TABLE``, disable or drop a
trigger, or grant itself more. On SQLite, and on a platform that gives a single role, these
walls do not exist: the triggers and the seals (funding.ledger.seals) remain.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import make_url

from funding.errors import FundingError


@dataclass(frozen=True)
class Access:
    insert: bool = True
    update: tuple[str, ...] | bool = ()  # columns, or True for every column
    delete: bool = False


READ = Access(insert=False)
APPEND = Access()
STATE = Access(update=True)


def forward(*columns: str) -> Access:
    return Access(update=columns)


TABLES: dict[str, Access] = {
    "alembic_version": READ,
    "journals": READ,
    # people and organisations
    "organisations": STATE,
    "sites": STATE,
    "users": STATE,
    "memberships": Access(update=True, delete=True),
    "login_tokens": forward("used_at"),
    "emails": forward("status", "attempts", "last_error", "next_attempt_at", "sent_at"),
    "rate_limits": Access(update=("hits",), delete=True),  # counters: a window's hits grow, old windows go
    "link_revocations": Access(update=("revoked_before",)),  # moved forward at each revocation
    "process_heartbeats": Access(update=True, delete=True),  # running processes: a clean stop deletes its row
    # the ledger
    "accounts": forward("label", "active"),
    "aux_accounts": forward("label"),
    "ledger_heads": forward("last_number", "last_hash", "closed_through", "last_closing_hash"),
    "grants": APPEND,
    "fixed_assets": APPEND,
    "grant_budget_lines": Access(update=True, delete=True),  # a budget set again replaces its lines
    "entries": forward("number", "prev_hash", "hash", "validated_at"),
    "postings": APPEND,
    "closings": APPEND,
    "ledger_seals": APPEND,
    # the Stripe boundary
    "stripe_events": STATE,
    "stripe_requests": STATE,
    "installation_facts": APPEND,  # written once, at first use
    "stripe_objects": STATE,
    "stripe_tax_rates": forward("stripe_id"),
    "stripe_payouts": STATE,
    "payments": STATE,
    # recurring gifts: the gift mirrors its subscription; an instalment only records what was taken back
    "recurring_gifts": STATE,
    "recurring_gift_payments": forward("amount_refunded"),
    "recurring_gift_changes": forward("status", "applied_at"),  # a donor's request, settled once
    # campaigns
    "campaigns": STATE,
    "campaign_tiers": STATE,
    "campaign_matches": Access(update=True, delete=True),
    "campaign_pledges": STATE,
    "campaign_entries": APPEND,
    "campaign_updates": APPEND,  # news is published once; a correction is another update
    "campaign_reminders": forward("sent_at"),
    "tax_receipts": forward("voided_at", "void_reason", "replaced_by_id"),
    "tax_receipt_counters": forward("last_number"),
    "tax_receipt_issuers": STATE,
    # coworking
    "coworking_plans": STATE,
    "coworking_plan_prices": STATE,
    "coworking_members": STATE,
    "coworking_checkouts": STATE,
    "coworking_join_requests": Access(update=True, delete=True),  # a join never paid is forgotten after 30 days
    "coworking_subscriptions": STATE,
    "coworking_invoices": STATE,
    "coworking_credit_notes": STATE,
    "coworking_passes": STATE,
    "coworking_pass_days": APPEND,
    # the bar
    "bar_products": STATE,
    "bar_heads": forward("last_seq", "last_hash", "closed_through", "last_closing_hash", "last_archive_hash"),
    "bar_tickets": STATE,
    "bar_sale_lines": APPEND,
    "bar_batches": STATE,
    "bar_batch_lines": APPEND,
    "bar_tabs": READ,  # what each tab owes: kept by the lines' and claims' triggers (SECURITY DEFINER), never by the service
    "bar_closings": APPEND,
    "bar_archives": APPEND,
    # exports
    "export_logs": APPEND,
    "export_recipients": STATE,
    "export_runs": forward("emails"),
}


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def statements(role: str, tables: list[str]) -> list[str]:
    """Revoke everything from ``role``, then grant each table what it needs."""
    who = _ident(role)
    out = [f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {who}",
           f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {who}",
           f"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM {who}",
           f"REVOKE CREATE ON SCHEMA public FROM {who}",
           f"GRANT USAGE ON SCHEMA public TO {who}",
           f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {who}",
           f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {who}"]
    missing = sorted(set(tables) - set(TABLES))
    if missing:
        raise ValueError(f"no privileges written for {', '.join(missing)} (funding/grants.py)")
    for table in sorted(tables):
        access = TABLES[table]
        privileges = ["SELECT"] + (["INSERT"] if access.insert else []) + (["DELETE"] if access.delete else [])
        if access.update is True:
            privileges.append("UPDATE")
        elif access.update:
            privileges.append(f"UPDATE ({', '.join(_ident(c) for c in access.update)})")
        out.append(f"GRANT {', '.join(privileges)} ON {_ident(table)} TO {who}")
    return out


async def apply(owner_url: str, service_url: str) -> str | None:
    """Create the service's role if it is missing (and the owner may), then set its grants.
    Returns the role's name, or None when both URLs name the same role (a single-role platform)."""
    import asyncpg

    owner, service = make_url(owner_url), make_url(service_url)
    if owner.get_backend_name() != "postgresql" or service.username in (None, owner.username):
        return None
    role = service.username
    if not owner.database:
        raise FundingError("MIGRATION_DATABASE_URL (or DATABASE_URL) names no database to grant access to")
    conn = await asyncpg.connect(owner.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        async with conn.transaction():
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                password = f" PASSWORD {_literal(service.password)}" if service.password else ""
                await conn.execute(f"CREATE ROLE {_ident(role)} LOGIN NOINHERIT{password}")
            await conn.execute(f"GRANT CONNECT ON DATABASE {_ident(owner.database)} TO {_ident(role)}")
            tables = [r[0] for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
            for sql in statements(role, tables):
                await conn.execute(sql)
    finally:
        await conn.close()
    return role


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
