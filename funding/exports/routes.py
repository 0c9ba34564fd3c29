"""Pages and downloads: exports and their log for accountants, printable trial balance and
general ledger, the funding-mix report, signed download links, the public transparency
pages and open data. HTTP only: parse, call the services, render or stream."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import tempfile
from collections.abc import Awaitable, Callable
from typing import IO
from urllib.parse import urlencode

from sqlalchemy import select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from funding import csvout
from funding.clock import paris_today
from funding.db import transaction
from funding.exports import books, report, service
from funding.exports.journal import ExportError, Scope
from funding.exports.models import FORMATS, Channel, ExportLog, ExportRecipient, ExportRun
from funding.i18n import SOURCE_LABELS
from funding.i18n import gettext as _
from funding.ledger import annual, seals
from funding.ledger.seals import Keyring
from funding.mail.models import Email
from funding.orgs.models import Organisation, Site
from funding.web import BOOKS, db, flash, load_user, pdf_response, redirect_to, render, require

EXPORTERS = ("admin", "accountant")
CHART = {"chart_width": report.CHART_WIDTH, "trend_height": report.TREND_HEIGHT, "trend_bar": report.TREND_BAR}


def _attachment(name: str) -> dict[str, str]:
    return {"content-disposition": f'attachment; filename="{name}"'}


def _period(request: Request, today: dt.date) -> tuple[dt.date, dt.date]:
    """?from=&to= (dates), or ?year=, else the last twelve months."""
    params = request.query_params
    try:
        if params.get("year", "").strip():
            return report.year_bounds(int(params["year"]))
        start, end = report.last_twelve_months(today)
        if params.get("from", "").strip():
            start = service.parse_date(params["from"], _("Date de début"))
        if params.get("to", "").strip():
            end = service.parse_date(params["to"], _("Date de fin"))
    except (ValueError, OverflowError, ExportError) as exc:
        raise HTTPException(400, _("Période invalide : %(detail)s", detail=str(exc))) from None
    if start > end:
        raise HTTPException(400, _("La période est inversée."))
    return start, end


async def _choices(session) -> dict:
    orgs = (await session.execute(select(Organisation.id, Organisation.siren, Organisation.name).order_by(Organisation.name))).all()
    sites = await service.site_choices(session)
    return {"orgs": orgs, "sites": sites}


async def _scope(request: Request, session) -> Scope:
    start, end = _period(request, paris_today())
    params = request.query_params
    try:
        return await service.resolve_scope(session, siren=params.get("org") or None, site=params.get("site") or None,
                                           start=start, end=end)
    except ExportError as exc:
        raise HTTPException(400, str(exc)) from None


# --- accountants ---------------------------------------------------------------------------


async def exports_page(request: Request) -> Response:
    async with db(request) as session:
        user = await require(request, session, EXPORTERS)
        choices = await _choices(session)
        start, end = _period(request, paris_today())
        logs = (await session.execute(
            select(ExportLog, Organisation.siren, Site.slug).outerjoin(Organisation, Organisation.id == ExportLog.org_id)
            .outerjoin(Site, Site.id == ExportLog.site_id).order_by(ExportLog.id.desc()).limit(100)
        )).all()
        recipients = (await session.execute(
            select(ExportRecipient, Organisation.name).join(Organisation).order_by(Organisation.name, ExportRecipient.email)
        )).all()
        runs = (await session.execute(
            select(ExportRun, Organisation.name, Organisation.siren).join(Organisation).order_by(ExportRun.period.desc()).limit(24)
        )).all()
        emails = (await session.scalars(
            select(Email).where(Email.dedupe_key.like("exports:%")).order_by(Email.id.desc()).limit(100)
        )).all()
    return render(request, "exports/index.html", {
        **choices, "start": start, "end": end, "formats": FORMATS, "labels": service.FORMAT_LABELS, "logs": logs,
        "recipients": recipients, "runs": runs, "emails": emails, "can_manage": user.can("admin"),
        "org_siren": request.query_params.get("org", ""), "site_slug": request.query_params.get("site", ""),
    })


async def download(request: Request) -> Response:
    """Stream an export; it is logged (with its SHA-256) once it has been handed over whole."""
    fmt = request.query_params.get("format", "")
    async with db(request) as session:
        user = await require(request, session, EXPORTERS)
        if fmt not in FORMATS and fmt not in service.DESCRIPTIONS:
            raise HTTPException(400, _("Format inconnu : %(format)s", format=fmt))
        scope = await _scope(request, session)
    engine, sessions = request.app.state.read_engine, request.app.state.sessions
    if fmt in service.DESCRIPTIONS:
        described = service.DESCRIPTIONS[fmt]
        async with _turns(request), engine.connect() as conn:
            digest = await service.digest_of(conn, scope, described)
        return Response(service.fec_description(scope, digest, described), media_type=service.MEDIA_TYPES[fmt],
                        headers=_attachment(service.filename(fmt, scope)))
    try:  # refusals (e.g. a FEC with foreign currencies) come before any byte
        spool, digest = await _spool(request, engine, scope, fmt)
    except ExportError as exc:
        raise HTTPException(400, str(exc)) from None

    async def taken() -> None:
        async with transaction(sessions) as log_session:
            await service.record_taken(log_session, scope, fmt, digest, taken_by=user.email, channel=Channel.WEB)

    return StreamingResponse(_unspool(spool, taken), media_type=service.MEDIA_TYPES[fmt],
                             headers=_attachment(service.filename(fmt, scope)))


SPOOL_IN_MEMORY = 1024 * 1024  # past this, an export being sent waits in a temporary file
SEND_CHUNK = 64 * 1024


def _turns(request: Request) -> asyncio.Semaphore:
    """Exports of this process read the database a few at a time (EXPORT_CONCURRENCY): forty
    asked at once wait for their turn here, holding nothing, instead of taking every connection
    of the pool from the pages and the webhooks."""
    state = request.app.state
    if getattr(state, "export_turns", None) is None:
        state.export_turns = asyncio.Semaphore(state.settings.export_concurrency)
    return state.export_turns


async def _spool(request: Request, engine, scope: Scope, fmt: str) -> tuple[IO[bytes], service.Digest]:
    """Read the whole export, then give its connection back: a client that reads slowly (or
    stops reading) holds a file, never one of the pool's connections. Read as before, from
    one connection in one pass; the bytes wait in memory up to SPOOL_IN_MEMORY, then on disk."""
    digest = service.Digest()
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115  (closed by _unspool)
    try:
        async with _turns(request), engine.connect() as conn:
            async for chunk in service.chunks(conn, scope, fmt, digest.count, digest.notes):
                spool.write(digest.add(chunk))
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, digest


async def _unspool(spool: IO[bytes], then: Callable[[], Awaitable[None]]):
    """The spooled export, sent at the client's pace; ``then`` once it has been handed over whole."""
    try:
        while chunk := spool.read(SEND_CHUNK):
            yield chunk
    finally:
        spool.close()
    await then()


async def trial_balance_page(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, EXPORTERS)
        scope = await _scope(request, session)
        rows = await books.balance_rows(session, scope)
        choices = await _choices(session)
    totals: dict[str, list[int]] = {}
    for r in rows:
        t = totals.setdefault(r.currency, [0, 0])
        t[0] += r.debit
        t[1] += r.credit
    return render(request, "exports/trial_balance.html", {**choices, "scope": scope, "rows": rows, "totals": totals,
                                                           "query": request.query_params.multi_items()})


async def general_ledger_page(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, EXPORTERS)
        scope = await _scope(request, session)
        choices = await _choices(session)
    lines = []
    async with request.app.state.engine.connect() as conn:
        async for part in books.general_ledger(conn, scope):
            lines += part
    return render(request, "exports/general_ledger.html", {**choices, "scope": scope, "lines": lines,
                                                            "query": request.query_params.multi_items()})


async def recipients(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, ("admin",))
        form = await request.form()
        org = await session.scalar(select(Organisation).where(Organisation.siren == str(form.get("org", ""))))
        if org is None:
            raise HTTPException(400, _("Organisation inconnue."))
        if form.get("remove"):
            row = await session.scalar(select(ExportRecipient).where(ExportRecipient.org_id == org.id,
                                                                     ExportRecipient.email == str(form["remove"])))
            if row is not None:
                row.active = False
            flash(request, _("Destinataire retiré."), "success")
            return redirect_to(request, "exports")
        formats = ",".join(f for f in FORMATS if form.get(f"format-{f}"))
        try:
            await service.add_recipient(session, org.id, str(form.get("email", "")), str(form.get("name", "")), formats)
        except ExportError as exc:
            await session.rollback()
            flash(request, str(exc), "error")
            return redirect_to(request, "exports")
    flash(request, _("Destinataire enregistré : il recevra les exports de chaque mois clos."), "success")
    return redirect_to(request, "exports")


async def signed_link(request: Request) -> Response:
    """A download link sent by email: signed, expiring, checked against the recorded hash."""
    settings = request.app.state.settings
    try:
        ref = service.read_link(settings, request.path_params["token"])
        async with db(request) as session:
            scope = await service.scope_for_ref(session, ref)
            await service.check_link_recipient(session, scope, ref)
    except ExportError as exc:
        return render(request, "exports/link.html", {"error": str(exc)}, status_code=400)
    engine, sessions, fmt = request.app.state.read_engine, request.app.state.sessions, ref["format"]
    spool, digest = await _spool(request, engine, scope, fmt)  # read once: what is checked is what is sent
    if digest.hexdigest != ref["sha256"]:
        spool.close()
        return render(request, "exports/link.html", {"error": _("Ce fichier ne correspond plus à celui qui vous a été envoyé : "
                                                                  "contactez l'association.")}, status_code=409)

    async def taken() -> None:
        async with transaction(sessions) as session:
            await service.record_taken(session, scope, fmt, digest, taken_by=ref["to"], channel=Channel.LINK)

    return StreamingResponse(_unspool(spool, taken), media_type=service.MEDIA_TYPES[fmt],
                             headers=_attachment(service.filename(fmt, scope)))


# --- funding mix ---------------------------------------------------------------------------


async def _mix(request: Request, session, *, site_slug: str | None, org_siren: str | None = None, with_grants: bool = True):
    start, end = _period(request, paris_today())
    site = org_id = None
    if site_slug:
        site = await session.scalar(select(Site).where(Site.slug == site_slug))
        if site is None:
            raise HTTPException(404)
    if org_siren:
        org_id = await session.scalar(select(Organisation.id).where(Organisation.siren == org_siren))
        if org_id is None:
            raise HTTPException(400, _("Organisation inconnue."))
    return await report.funding_mix(session, start=start, end=end, site=site, org_id=org_id, with_grants=with_grants)


def mix_csv(mix: report.FundingMix) -> bytes:
    buf = io.StringIO()
    writer = csvout.writer(buf, delimiter=";", lineterminator="\r\n")
    writer.writerow(("section", "periode", "lieu", "origine", "compte", "intitule", "montant", "devise", "part"))
    where = mix.site.slug if mix.site else "reseau"
    period = f"{mix.start.isoformat()}/{mix.end.isoformat()}"
    cur = mix.currency
    for source, amount in mix.by_source:
        writer.writerow(("origine", period, where, source, "", "", report.format_plain(amount, cur), cur,
                         report.share_text(amount, mix.total)))
    writer.writerow(("total", period, where, "", "", "", report.format_plain(mix.total, cur), cur, "100,0" if mix.total else ""))
    for source, account, label, amount in mix.by_account:
        writer.writerow(("compte", period, where, source, account, label, report.format_plain(amount, cur), cur,
                         report.share_text(amount, mix.total)))
    for month, amounts in mix.months:
        month_total = sum(amounts.values())
        for source, amount in sorted(amounts.items()):
            if amount:
                writer.writerow(("mois", month, where, source, "", "", report.format_plain(amount, cur), cur,
                                 report.share_text(amount, month_total)))
    for g in mix.grants:
        writer.writerow(("subvention", g.convention_date.isoformat(), where, "public", g.reference, g.funder,
                         report.format_plain(g.granted, g.currency), g.currency, ""))
    return ("\ufeff" + buf.getvalue()).encode()


async def funding_mix_page(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, BOOKS)
        mix = await _mix(request, session, site_slug=request.query_params.get("site") or None,
                         org_siren=request.query_params.get("org") or None)
        choices = await _choices(session)
    return render(request, "exports/funding_mix.html", {**choices, **CHART, "mix": mix, "query": urlencode(request.query_params.multi_items()),
                                                         "site_slug": request.query_params.get("site", ""),
                                                         "org_siren": request.query_params.get("org", "")})


async def funding_mix_csv(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, BOOKS)
        mix = await _mix(request, session, site_slug=request.query_params.get("site") or None,
                         org_siren=request.query_params.get("org") or None)
    name = f"mix-{mix.site.slug if mix.site else 'reseau'}-{mix.start:%Y%m%d}-{mix.end:%Y%m%d}.csv"
    return Response(mix_csv(mix), media_type="text/csv; charset=utf-8", headers=_attachment(name))


# --- annual accounts -----------------------------------------------------------------------------


async def _annual(request: Request, session) -> annual.AnnualAccounts:
    """?org=SIREN (default: the first organisation in sight), ?site=SLUG (its analytic view),
    ?year= (default: the fiscal year of today). Another organisation's is not there: 404."""
    params = request.query_params
    site = org = None
    if params.get("site"):
        site = await session.scalar(select(Site).where(Site.slug == params["site"]))
        if site is None:
            raise HTTPException(404)
    if params.get("org"):
        org = await session.scalar(select(Organisation).where(Organisation.siren == params["org"]))
        if org is None:
            raise HTTPException(404)
        if site is not None and site.org_id != org.id:
            raise HTTPException(400, _("Ce lieu n'appartient pas à cette organisation."))
    elif site is not None:
        org = await session.get(Organisation, site.org_id)
    else:
        org = await session.scalar(select(Organisation).order_by(Organisation.name).limit(1))
    if org is None:
        raise HTTPException(404)
    try:
        year = annual.parse_year(params["year"]) if params.get("year", "").strip() else annual.current_year(
            paris_today(), org.fiscal_year_start_month)
        return await annual.annual_accounts(session, org_id=org.id, year=year, site_id=site.id if site else None)
    except annual.AnnualAccountsError as exc:
        raise HTTPException(400, str(exc)) from None


async def annual_accounts_page(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, EXPORTERS)
        acc = await _annual(request, session)
        choices = await _choices(session)
    query = {"org": acc.siren, "year": str(acc.year), **({"site": acc.site} if acc.site else {})}
    mix_query = {"org": acc.siren, "from": acc.start.isoformat(), "to": acc.end.isoformat(), **({"site": acc.site} if acc.site else {})}
    return render(request, "exports/annual_accounts.html", {**choices, "acc": acc, "query": query, "mix_query": mix_query})


async def annual_accounts_csv(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, EXPORTERS)
        acc = await _annual(request, session)
    return Response(annual.annual_csv(acc), media_type="text/csv; charset=utf-8", headers=_attachment(annual.csv_name(acc)))


async def annual_accounts_pdf(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, EXPORTERS)
        acc = await _annual(request, session)
    content = await asyncio.to_thread(annual.annual_pdf, acc)
    return pdf_response(content, annual.pdf_name(acc))


# --- public ------------------------------------------------------------------------------------


async def transparency(request: Request) -> Response:
    slug = request.path_params.get("slug")
    async with db(request) as session:
        await load_user(request, session)
        mix = await _mix(request, session, site_slug=slug)
        sites = (await session.execute(select(Site.slug, Site.name, Site.town).order_by(Site.is_central.desc(), Site.name))).all()
    return render(request, "exports/transparency.html", {**CHART, "mix": mix, "sites": sites, "public": True})


async def open_data_grants(request: Request) -> Response:
    async with db(request) as session:
        rows = await report.scdl_rows(session)
    buf = io.StringIO()
    writer = csvout.dict_writer(buf, report.SCDL_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return Response(buf.getvalue().encode(), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": 'inline; filename="subventions.csv"'})


async def _seals(request: Request) -> tuple[list[dict], Keyring]:
    siren = request.query_params.get("org") or None
    keyring = Keyring.from_settings(request.app.state.settings)
    async with db(request) as session:
        if siren and await session.scalar(select(Organisation.id).where(Organisation.siren == siren)) is None:
            raise HTTPException(404)
        return await seals.feed(session, keyring, siren=siren), keyring


async def open_data_seals_csv(request: Request) -> Response:
    """The seals of every closing, append-only: keep a copy, it is what `ledger verify --seals` checks."""
    rows, _keyring = await _seals(request)
    return Response(seals.feed_csv(rows), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": 'inline; filename="ledger-seals.csv"'})


async def open_data_seals_json(request: Request) -> Response:
    rows, keyring = await _seals(request)
    return Response(seals.feed_json(rows, keyring), media_type="application/json")


async def _open_mix(request: Request) -> list[dict]:
    slug = request.query_params.get("site") or None
    async with db(request) as session:
        if slug:
            site = await session.scalar(select(Site).where(Site.slug == slug))
            if site is None:
                raise HTTPException(404)
            return await report.mix_by_month(session, site=site)
        out = await report.mix_by_month(session)
        for site in (await session.scalars(select(Site).order_by(Site.slug))).all():
            out += await report.mix_by_month(session, site=site)
        return out


async def open_data_mix_csv(request: Request) -> Response:
    buf = io.StringIO()
    writer = csvout.writer(buf, lineterminator="\r\n")
    writer.writerow(("periode", "lieu", "origine", "montant", "devise", "part"))
    for row in await _open_mix(request):
        for source, values in row["sources"].items():
            writer.writerow((row["period"], row["site"] or "reseau", source, values["amount"], row["currency"], values["share"]))
    return Response(buf.getvalue().encode(), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": 'inline; filename="funding-mix.csv"'})


async def open_data_mix_json(request: Request) -> Response:
    body = {"description": "Produits (comptes de classe 7) par mois, lieu et origine des fonds ; montants en unités "
                           "monétaires (chaîne décimale) et en centimes ; part en pourcentage du mois.",
            "sources": {k: str(v) for k, v in SOURCE_LABELS.items()}, "periods": await _open_mix(request)}
    return Response(json.dumps(body, ensure_ascii=False, indent=1).encode(), media_type="application/json")


routes = [
    Route("/admin/exports", exports_page, name="exports"),
    Route("/admin/exports/download", download, name="exports_download"),
    Route("/admin/exports/trial-balance", trial_balance_page, name="exports_trial_balance"),
    Route("/admin/exports/general-ledger", general_ledger_page, name="exports_general_ledger"),
    Route("/admin/exports/recipients", recipients, methods=["POST"], name="exports_recipients"),
    Route("/admin/reports/funding-mix", funding_mix_page, name="funding_mix"),
    Route("/admin/reports/funding-mix.csv", funding_mix_csv, name="funding_mix_csv"),
    Route("/admin/reports/annual-accounts", annual_accounts_page, name="annual_accounts"),
    Route("/admin/reports/annual-accounts.csv", annual_accounts_csv, name="annual_accounts_csv"),
    Route("/admin/reports/annual-accounts.pdf", annual_accounts_pdf, name="annual_accounts_pdf"),
    Route("/exports/lien/{token:str}", signed_link, name="exports_link"),
    Route("/transparence", transparency, name="transparency"),
    Route("/transparence/{slug:str}", transparency, name="transparency_site"),
    Route("/open-data/subventions.csv", open_data_grants, name="open_data_grants"),
    Route("/open-data/funding-mix.csv", open_data_mix_csv, name="open_data_mix_csv"),
    Route("/open-data/funding-mix.json", open_data_mix_json, name="open_data_mix_json"),
    Route("/open-data/ledger-seals.csv", open_data_seals_csv, name="open_data_seals_csv"),
    Route("/open-data/ledger-seals.json", open_data_seals_json, name="open_data_seals_json"),
]
