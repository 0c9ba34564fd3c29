"""Creating things in Stripe exactly once.

The request row (with its idempotency key, derived from our own record and prefixed with
this installation's prefix) is committed *before* the call. A definite answer is recorded;
no definite answer leaves the row ``unknown``, and ``resolve_unknown`` (the worker's sweep)
ends it, within ``RAISE_AFTER`` at most:

1. it looks for the object at Stripe by our metadata (``entrelab_ref``, and
   ``entrelab_installation``): the Search API where Stripe has one (PaymentIntents,
   Customers, Charges, Invoices, Subscriptions, Prices, Products), else a list filtered
   by what Stripe allows (invoice items and SetupIntents of the customer, refunds of the
   intent, credit notes of the invoice, Checkout Sessions of the customer, tax rates);
   found → ``succeeded``;
2. within Stripe's 24 h it repeats the very same request with the same key (Stripe
   answers with what it did the first time, or does it now — once either way);
3. when the lookup is conclusive (a list, or a search old enough for Stripe's index) and
   finds nothing, a new attempt (next key) creates it; a Checkout or portal session is
   never made again (nobody ever had its address: it can take no money; it fails);
4. otherwise — nothing to look it up with, Stripe replaying a saved 500, or no answer at
   all for ``RAISE_AFTER`` — the request is *raised* to staff (``raised_at``, and
   ``error`` says what to check; back office, page Stripe) and never created again by
   the sweep.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from funding.db import Sessions, dialect_insert, dialect_of, insert_ignore, rowcount, transaction, utcnow
from funding.payments.models import InstallationFact, RequestStatus, StripeRequest
from funding.stripe_gateway import GatewayError, StripeGateway, StripeRefused, StripeUnknown

if TYPE_CHECKING:
    from funding.settings import Settings

log = logging.getLogger("funding.payments")
KEY_LIFETIME = dt.timedelta(hours=23)
RAISE_AFTER = dt.timedelta(hours=24)  # no unknown request stays unknown longer than this: resolved or raised
SEARCH_LAG = dt.timedelta(minutes=5)  # Stripe's search index may lag behind (about a minute, documented)
SEARCHABLE = {"payment_intents", "customers", "subscriptions", "invoices", "charges", "prices", "products"}
# Made again by nobody: a page whose address nobody received can take no money, and expires.
NEVER_AGAIN = {"checkout.sessions", "billing_portal.sessions"}
PREFIX_FACT = "stripe_key_prefix"


def idempotency_key(ref: str, resource: str, attempt: int, prefix: str = "entrelab") -> str:
    return f"{prefix}-{ref}-{resource}-{attempt}".replace(":", "-").replace(".", "-")


async def key_prefix(sessions: Sessions, gw: StripeGateway) -> str:
    """``STRIPE_IDEMPOTENCY_PREFIX``, else ``entrelab-`` + an id drawn by this database at first
    use (``installation_facts``): two databases on one Stripe account never share a key, and
    a restored copy keeps the prefix of the database it copies."""
    if gw.key_prefix:
        return gw.key_prefix
    query = select(InstallationFact.value).where(InstallationFact.name == PREFIX_FACT)
    async with sessions() as session:
        found = await session.scalar(query)
    if found:
        return found
    async with transaction(sessions) as session:
        insert = dialect_insert(dialect_of(session))
        await session.execute(insert(InstallationFact).values(name=PREFIX_FACT, value=f"entrelab-{secrets.token_hex(5)}")
                              .on_conflict_do_nothing(index_elements=["name"]))
        return (await session.scalar(query)) or "entrelab"


async def create_once(
    sessions: Sessions, gw: StripeGateway, *, ref: str, resource: str, params: dict[str, Any], tag: bool = True
) -> dict[str, Any]:
    """Create a Stripe object for our record ``ref`` (e.g. ``payment:12``) at most once.

    ``params["metadata"]["entrelab_ref"]`` is set to ``ref`` so the object can be found
    again (``tag=False`` for the few objects that take no metadata, such as Billing
    Portal sessions). Raises StripeRefused (definite no) or StripeUnknown (row left ``unknown``).
    """
    prefix = await key_prefix(sessions, gw)
    if tag:
        params = {**params, "metadata": {**params.get("metadata", {}), "entrelab_ref": ref, "entrelab_installation": prefix}}
    async with transaction(sessions) as session:
        existing = await session.scalar(
            select(StripeRequest).where(StripeRequest.ref == ref, StripeRequest.resource == resource)
            .order_by(StripeRequest.attempt.desc()).limit(1)
        )
        if existing is not None and existing.status == RequestStatus.SUCCEEDED:
            request_id, key = existing.id, existing.idempotency_key
            done = existing.stripe_id
        elif existing is not None and existing.raised_at is not None:
            raise StripeUnknown(f"{resource} for {ref}: raised to staff, who check it at Stripe", final=True)
        else:
            done = None
            attempt = existing.attempt if existing is not None else 1
            key = existing.idempotency_key if existing is not None else idempotency_key(ref, resource, attempt, prefix)
            if existing is not None:
                request_id = existing.id
                # A retry under the same key sends what the first attempt sent, as Stripe expects
                # (anything derived from the clock, such as a Checkout's expires_at, included).
                if existing.status in (RequestStatus.PENDING, RequestStatus.UNKNOWN) and existing.params:
                    params = json.loads(existing.params)
            else:
                inserted = await insert_ignore(
                    session, StripeRequest,
                    {"ref": ref, "resource": resource, "attempt": attempt, "idempotency_key": key,
                     "params": json.dumps(params, sort_keys=True), "status": RequestStatus.PENDING, "created_at": utcnow(),
                     "updated_at": utcnow()},
                    ["idempotency_key"],
                )
                # None: a concurrent caller inserted it first; same key, same outcome
                request_id = inserted if inserted is not None else (await session.execute(
                    select(StripeRequest.id).where(StripeRequest.idempotency_key == key))).scalar_one()
    if done:
        return await gw.retrieve(resource, done)
    return await _call(sessions, gw, request_id, resource, params, key)


async def _call(sessions: Sessions, gw: StripeGateway, request_id: int, resource: str, params: dict[str, Any], key: str) -> dict[str, Any]:
    try:
        obj = await gw.create(resource, params, key=key)
    except StripeRefused as exc:
        await _settle(sessions, request_id, "failed", error=str(exc))
        raise
    except StripeUnknown as exc:
        await _settle(sessions, request_id, "unknown", error=str(exc))
        raise
    await _settle(sessions, request_id, "succeeded", stripe_id=obj["id"])
    return obj


async def _settle(sessions: Sessions, request_id: int, status: str, *, stripe_id: str | None = None, error: str | None = None) -> None:
    async with transaction(sessions) as session:
        await session.execute(
            update(StripeRequest).where(StripeRequest.id == request_id, StripeRequest.status != RequestStatus.SUCCEEDED)
            .values(status=status, stripe_id=stripe_id, error=error, updated_at=utcnow())
        )


async def find_ours(sessions: Sessions, gw: StripeGateway, resource: str, metadata: dict[str, str]) -> list[dict[str, Any]]:
    """What this installation created at Stripe with ``metadata`` (Search API), oldest first:
    how a job asks Stripe whether its object already exists before creating it, so that a
    restored backup (or any lost local state) never makes it twice."""
    tags = {"entrelab_installation": await key_prefix(sessions, gw), **metadata}
    query = " AND ".join(f"metadata['{k}']:'{_quoted(v)}'" for k, v in tags.items())
    hits = [o for o in await gw.search(resource, query) if all((o.get("metadata") or {}).get(k) == v for k, v in tags.items())]
    return sorted(hits, key=lambda o: o.get("created", 0))


async def adopt(sessions: Sessions, gw: StripeGateway, *, ref: str, resource: str, obj: dict[str, Any]) -> None:
    """Record that ``obj``, found at Stripe, is what ``ref`` asks for: its latest request
    succeeded with it (or one is written, if local state lost even the request)."""
    prefix = await key_prefix(sessions, gw)
    async with transaction(sessions) as session:
        existing = await session.scalar(select(StripeRequest).where(StripeRequest.ref == ref, StripeRequest.resource == resource)
                                        .order_by(StripeRequest.attempt.desc()).limit(1))
        if existing is not None:
            if existing.status != RequestStatus.SUCCEEDED:
                await session.execute(update(StripeRequest).where(StripeRequest.id == existing.id).values(
                    status=RequestStatus.SUCCEEDED, stripe_id=obj["id"], error="found again at Stripe by our metadata",
                    raised_at=None, updated_at=utcnow()))
            return
        await insert_ignore(session, StripeRequest, {
            "ref": ref, "resource": resource, "attempt": 1, "idempotency_key": idempotency_key(ref, resource, 1, prefix),
            "params": json.dumps({"metadata": obj.get("metadata") or {}}, sort_keys=True), "status": RequestStatus.SUCCEEDED,
            "stripe_id": obj["id"], "error": "found again at Stripe by our metadata", "created_at": utcnow(), "updated_at": utcnow()},
            ["idempotency_key"])


@dataclass
class Lookup:
    found: dict[str, Any] | None
    conclusive: bool  # nothing found means nothing there (a list, or a search past the index's lag)
    how: str  # how it was looked for, for staff


def _tags(row: StripeRequest, params: dict[str, Any]) -> dict[str, str]:
    meta = params.get("metadata") or {}
    tags = {"entrelab_ref": str(meta.get("entrelab_ref") or row.ref)}
    if meta.get("entrelab_installation"):
        tags["entrelab_installation"] = str(meta["entrelab_installation"])
    return tags


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


async def find(gw: StripeGateway, row: StripeRequest, params: dict[str, Any], *, search_lag: dt.timedelta = SEARCH_LAG,
               now: dt.datetime | None = None) -> Lookup:
    """The object ``row`` asked for, found again at Stripe by our metadata where Stripe lets us."""
    if row.resource == "billing_portal.sessions":  # no metadata, no list: nothing to find it by
        return Lookup(None, False, "cannot be looked up")
    tags = _tags(row, params)

    def ours(obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        return all(meta.get(k) == v for k, v in tags.items())

    if row.resource in SEARCHABLE:
        query = " AND ".join(f"metadata['{k}']:'{_quoted(v)}'" for k, v in tags.items())
        hits = [o for o in await gw.search(row.resource, query) if ours(o)]
        settled = (now or utcnow()) - row.created_at >= search_lag
        return Lookup(min(hits, key=lambda o: o.get("created", 0)) if hits else None, settled, f"search {query}")
    filters: dict[str, Any] | None = None
    if row.resource in ("invoice_items", "setup_intents", "checkout.sessions") and params.get("customer"):
        filters = {"customer": params["customer"]}
    elif row.resource == "refunds" and (params.get("payment_intent") or params.get("charge")):
        filters = {"payment_intent": params["payment_intent"]} if params.get("payment_intent") else {"charge": params["charge"]}
    elif row.resource == "credit_notes" and params.get("invoice"):
        filters = {"invoice": params["invoice"]}
    elif row.resource == "tax_rates":
        filters = {}
    if filters is None:
        return Lookup(None, False, "cannot be looked up")
    seen = 0
    async for obj in gw.list_all(row.resource, filters):
        if ours(obj):
            return Lookup(obj, True, f"list {filters}")
        seen += 1
        if seen >= 5_000:  # a bound on the walk: past it, we do not know
            return Lookup(None, False, f"list {filters} (more than {seen})")
    return Lookup(None, True, f"list {filters}")


def _what_to_check(row: StripeRequest, params: dict[str, Any], lookup: str, why: str) -> str:
    tags = ", ".join(f"{k} = {v}" for k, v in _tags(row, params).items())
    amount = f" de {params['amount']} {str(params.get('currency', '')).upper()} (unités mineures)" if "amount" in params else ""
    customer = f", client {params['customer']}" if params.get("customer") else ""
    return (f"Remonté au personnel ({why}) : Stripe n'a pas dit s'il a créé ce {row.resource}{amount}{customer}, "
            f"demandé le {row.created_at:%d/%m/%Y %H:%M} UTC avec la clé {row.idempotency_key}. Recherche : {lookup}. "
            f"À vérifier dans le tableau de bord Stripe : un objet de métadonnées {tags}. "
            f"S'il existe : funding stripe resolve {row.id} --found <son id> ; sinon : funding stripe resolve {row.id} --absent "
            f"(créé alors une fois). Le balayage ne le recrée jamais.")


async def _raise(sessions: Sessions, row: StripeRequest, params: dict[str, Any], lookup: str, why: str) -> None:
    message = _what_to_check(row, params, lookup, why)
    log.warning("sweep: request %s (%s %s) raised to staff: %s", row.id, row.ref, row.resource, why)
    async with transaction(sessions) as session:
        await session.execute(update(StripeRequest).where(StripeRequest.id == row.id, StripeRequest.status != RequestStatus.SUCCEEDED)
                              .values(status=RequestStatus.UNKNOWN, raised_at=utcnow(), error=message, updated_at=utcnow()))


async def _supersede(sessions: Sessions, gw: StripeGateway, row: StripeRequest, params: dict[str, Any]) -> None:
    """Nothing at Stripe, and we can tell: make it now, under the next attempt's key."""
    prefix = (params.get("metadata") or {}).get("entrelab_installation") or await key_prefix(sessions, gw)
    key = idempotency_key(row.ref, row.resource, row.attempt + 1, prefix)
    async with transaction(sessions) as session:
        retry_id = await insert_ignore(
            session, StripeRequest,
            {"ref": row.ref, "resource": row.resource, "attempt": row.attempt + 1, "idempotency_key": key,
             "params": row.params, "status": RequestStatus.PENDING, "created_at": utcnow(), "updated_at": utcnow()},
            ["idempotency_key"],
        )
        await session.execute(update(StripeRequest).where(StripeRequest.id == row.id)
                              .values(status=RequestStatus.FAILED, error="not found at Stripe: superseded by a new attempt",
                                      updated_at=utcnow()))
    if retry_id:
        await _call(sessions, gw, retry_id, row.resource, params, key)


async def _abandon(sessions: Sessions, row: StripeRequest) -> None:
    await _settle(sessions, row.id, "failed", error="no answer, nothing found: a page nobody received; if Stripe made it, "
                                                    "it expires unused (never made again)")


async def resolve_one(sessions: Sessions, gw: StripeGateway, row: StripeRequest, *, search_lag: dt.timedelta = SEARCH_LAG,
                      now: dt.datetime | None = None) -> bool:
    """End one unknown request if possible now: True when it is resolved or raised."""
    now = now or utcnow()
    params = json.loads(row.params)
    age = now - row.created_at
    try:
        lookup = await find(gw, row, params, search_lag=search_lag, now=now)
    except StripeRefused as exc:
        lookup = Lookup(None, False, f"lookup refused: {exc}")
    except GatewayError as exc:  # Stripe away: the same again next round, until RAISE_AFTER
        if age >= RAISE_AFTER:
            await _raise(sessions, row, params, f"unreachable: {exc}", "Stripe injoignable depuis 24 h")
            return True
        raise
    if lookup.found is not None:
        await _settle(sessions, row.id, "succeeded", stripe_id=lookup.found["id"])
        return True
    absent = lookup.conclusive
    if age < KEY_LIFETIME:
        try:  # the very same request: Stripe replays what it did, or does it now (once either way)
            await _call(sessions, gw, row.id, row.resource, params, row.idempotency_key)
            return True
        except StripeRefused:
            return True
        except StripeUnknown as exc:
            if not exc.final:
                raise
            # Stripe replays a saved 500 for this key: asking again tells nothing more
            if absent:
                if row.resource in NEVER_AGAIN:
                    await _abandon(sessions, row)
                else:
                    await _supersede(sessions, gw, row, params)
                return True
            if row.resource in SEARCHABLE and age < search_lag:
                return False  # Stripe's index may not show it yet: look again next round
            if row.resource in NEVER_AGAIN:
                await _abandon(sessions, row)
                return True
            await _raise(sessions, row, params, lookup.how, "Stripe rejoue une erreur 500 et l'objet ne se retrouve pas")
            return True
    if row.resource in NEVER_AGAIN:
        await _abandon(sessions, row)
    elif absent:
        await _supersede(sessions, gw, row, params)
    else:
        await _raise(sessions, row, params, lookup.how, "introuvable par nos métadonnées après la fenêtre d'idempotence")
    return True


async def ended_checkouts(session: AsyncSession, refs: list[str]) -> dict[str, str | None]:
    """Of our rows left ``unknown`` by a Checkout Session call, those whose request has ended since:
    ref → the session's id when the sweep found it at Stripe, None when it ended without one (failed:
    a page nobody received, never made again). Refs still unknown or raised to staff are absent."""
    if not refs:
        return {}
    rows = (await session.execute(
        select(StripeRequest.ref, StripeRequest.status, StripeRequest.stripe_id, StripeRequest.attempt)
        .where(StripeRequest.ref.in_(refs), StripeRequest.resource == "checkout.sessions")
        .order_by(StripeRequest.ref, StripeRequest.attempt))).all()
    latest = {ref: (status, stripe_id) for ref, status, stripe_id, _attempt in rows}  # the last attempt of each
    return {ref: (stripe_id if status == RequestStatus.SUCCEEDED else None)
            for ref, (status, stripe_id) in latest.items() if status in (RequestStatus.SUCCEEDED, RequestStatus.FAILED)}


async def end_unknown_checkouts(sessions: Sessions, model: Any, prefix: str, *, unknown: str, opened: str, expired: str,
                                limit: int = 200) -> int:
    """Rows of ``model`` (a payment, a coworking checkout, a recurring gift…) left ``unknown`` by their
    Checkout Session call follow that call once the sweep has ended it: the session found at Stripe →
    ``opened`` with its id (its webhooks finish it, completed or expired); nothing → ``expired``: no
    page was ever given, so no money can come. Their request ref is ``{prefix}:{row id}``. Returns
    how many rows moved; a row whose request is still unknown or raised to staff waits."""
    async with transaction(sessions) as session:
        ids = (await session.scalars(select(model.id).where(model.status == unknown).order_by(model.id).limit(limit))).all()
        ended = await ended_checkouts(session, [f"{prefix}:{row_id}" for row_id in ids])
        moved = 0
        for ref, session_id in ended.items():
            values = {"status": opened, "checkout_session_id": session_id} if session_id else {"status": expired}
            result = await session.execute(update(model).where(model.id == int(ref.rsplit(":", 1)[1]), model.status == unknown)
                                           .values(**values))
            moved += rowcount(result)
    return moved


async def resolve_unknown(sessions: Sessions, settings: Settings, gw: StripeGateway | None = None, *, limit: int = 50,
                          search_lag: dt.timedelta = SEARCH_LAG) -> int:
    """The sweep: end requests whose outcome is unknown (or stuck pending after a crash);
    requests raised to staff are theirs. Returns how many ended this round."""
    stale = utcnow() - dt.timedelta(minutes=2)
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(StripeRequest).where(
                    StripeRequest.raised_at.is_(None),
                    (StripeRequest.status == RequestStatus.UNKNOWN)
                    | ((StripeRequest.status == RequestStatus.PENDING) & (StripeRequest.updated_at < stale)),
                ).order_by(StripeRequest.id).limit(limit)
            )
        ).all()
    if not rows:
        return 0
    own = gw is None
    gw = gw or StripeGateway(settings)
    settled = 0
    try:
        for row in rows:
            try:
                settled += await resolve_one(sessions, gw, row, search_lag=search_lag)
            except GatewayError as exc:  # one request's trouble is its own: the others go on
                log.warning("sweep: request %s (%s) still unresolved: %s", row.id, row.ref, exc)
    finally:
        if own:
            await gw.aclose()
    return settled


async def staff_resolve(sessions: Sessions, gw: StripeGateway, request_id: int, *, stripe_id: str | None = None) -> str:
    """Staff checked a raised request at Stripe: ``stripe_id`` found there (it must carry our
    ``entrelab_ref``) settles it; none found makes it now, once, under the next attempt's key.
    Returns the request's outcome (``succeeded`` or ``failed`` with the refusal)."""
    async with sessions() as session:
        row = await session.get(StripeRequest, request_id)
    if row is None or row.raised_at is None or row.status != RequestStatus.UNKNOWN:
        raise ValueError(f"request {request_id}: not raised to staff")
    params = json.loads(row.params)
    if stripe_id is not None:
        obj = await gw.retrieve(row.resource, stripe_id)
        if row.resource != "billing_portal.sessions" and (obj.get("metadata") or {}).get("entrelab_ref") != row.ref:
            raise ValueError(f"{stripe_id} is not what {row.ref} asked for (its metadata entrelab_ref differs)")
        await _settle(sessions, row.id, "succeeded", stripe_id=stripe_id)
        return RequestStatus.SUCCEEDED
    try:
        await _supersede(sessions, gw, row, params)
    except StripeRefused as exc:
        return f"{RequestStatus.FAILED}: {exc}"
    return RequestStatus.SUCCEEDED


async def request_for(sessions: Sessions, ref: str, resource: str) -> StripeRequest | None:
    async with sessions() as session:
        return await session.scalar(
            select(StripeRequest).where(StripeRequest.ref == ref, StripeRequest.resource == resource)
            .order_by(StripeRequest.attempt.desc()).limit(1)
        )
