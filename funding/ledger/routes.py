"""Ledger pages for staff and accountants: journal, entry, trial balance, recording,
closings and verification. HTTP only: parse, call the service, render."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from funding.clock import paris_today
from funding.db import row_id
from funding.i18n import gettext as _
from funding.ledger import grant_report as gr
from funding.ledger import records
from funding.ledger.journal import journal_page
from funding.ledger.models import FUNDING_SOURCES, Closing, ClosingKind, Entry, Grant, LedgerHead, Posting
from funding.ledger.seals import Keyring
from funding.ledger.service import LedgerError, close_month, close_year, reverse, totals_by_currency, trial_balance, year_label
from funding.ledger.verify import verify_org
from funding.money import format_plain
from funding.orgs.models import Organisation, Site
from funding.web import BOOKS, STAFF, db, flash, redirect, redirect_to, render, require

PAGE = 50


def _date_param(request: Request, name: str) -> dt.date | None:
    raw = request.query_params.get(name, "").strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise HTTPException(400, _("Date invalide : %(value)s (AAAA-MM-JJ)", value=raw)) from None


async def _filters(request: Request, session: AsyncSession) -> dict[str, Any]:
    orgs = (await session.scalars(select(Organisation).order_by(Organisation.name))).all()
    sites = (await session.scalars(select(Site).order_by(Site.name))).all()
    org_id = site_id = None
    if request.query_params.get("org"):
        org = next((o for o in orgs if o.siren == request.query_params["org"]), None)
        if org is None:
            raise HTTPException(400, _("Organisation inconnue."))
        org_id = org.id
    if request.query_params.get("site"):
        site = next((s for s in sites if s.slug == request.query_params["site"]), None)
        if site is None:
            raise HTTPException(400, _("Site inconnu."))
        site_id = site.id
    start, end = _date_param(request, "from"), _date_param(request, "to")
    if start and end and start > end:
        raise HTTPException(400, _("La période est inversée."))
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "page"])
    return {"orgs": orgs, "sites": sites, "org_id": org_id, "site_id": site_id, "start": start, "end": end,
            "query_without_page": query}


async def dashboard(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, BOOKS)
        rows = (
            await session.execute(
                select(Organisation, LedgerHead).join(LedgerHead, LedgerHead.org_id == Organisation.id).order_by(Organisation.name)
            )
        ).all()
        sites = (await session.scalars(select(Site).order_by(Site.is_central.desc(), Site.name))).all()
    return render(request, "admin/dashboard.html", {"rows": rows, "sites": sites})


MAX_PAGE = 10**9  # far past any journal; its OFFSET (× PAGE) stays well inside a BIGINT


async def journal(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, BOOKS)
        f = await _filters(request, session)
        page = row_id(request.query_params.get("page", "1"))  # 1 to 18 digits: never an overflow in the driver
        if page is None:
            raise HTTPException(400, _("Numéro de page invalide."))
        page = min(max(page, 1), MAX_PAGE)
        source = request.query_params.get("source", "")
        if source and source not in FUNDING_SOURCES:
            raise HTTPException(400, _("Origine des fonds inconnue."))
        total, rows = await journal_page(session, org_id=f["org_id"], site_id=f["site_id"], start=f["start"], end=f["end"],
                                         source=source, offset=(page - 1) * PAGE, limit=PAGE)
    return render(
        request,
        "admin/journal.html",
        {**f, "rows": rows, "page": page, "pages": max(1, -(-total // PAGE)),
         "total": total, "source": source, "sources": FUNDING_SOURCES},
    )


async def entry_detail(request: Request) -> Response:
    async with db(request) as session:
        user = await require(request, session, BOOKS)
        org = await session.scalar(select(Organisation).where(Organisation.siren == request.path_params["siren"]))
        if org is None:
            raise HTTPException(404)
        entry = await session.scalar(select(Entry).where(Entry.org_id == org.id, Entry.number == request.path_params["number"]))
        if entry is None or entry.number is None:  # found by its number: it has one
            raise HTTPException(404)
        postings = (await session.scalars(select(Posting).where(Posting.entry_id == entry.id).order_by(Posting.line_no))).all()
        site = await session.get(Site, entry.site_id)
        reversed_by = await session.scalar(select(Entry.number).where(Entry.reverses_id == entry.id))
        reverses = await session.scalar(select(Entry.number).where(Entry.id == entry.reverses_id)) if entry.reverses_id else None
        if request.method == "POST":
            if not user.can(*STAFF, org=org.id):
                raise HTTPException(403)
            form = await request.form()
            try:
                posted = await reverse(session, org.id, entry.number, reason=str(form.get("reason", "")), created_by=user.email)
            except LedgerError as exc:
                flash(request, str(exc), "error")
                return redirect(request.url.path)
            flash(request, _("Écriture n° %(number)s contrepassée par l'écriture n° %(new)s.", number=entry.number, new=posted.number), "success")
            return redirect_to(request, "entry", siren=org.siren, number=posted.number)
    return render(
        request, "admin/entry.html",
        {"org": org, "entry": entry, "postings": postings, "site": site, "reversed_by": reversed_by, "reverses": reverses},
    )


async def balance(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, BOOKS)
        f = await _filters(request, session)
        rows = await trial_balance(session, org_id=f["org_id"], site_id=f["site_id"], start=f["start"], end=f["end"],
                                   openings=True)
    return render(request, "admin/trial_balance.html", {**f, "rows": rows, "totals": totals_by_currency(rows)})


async def record(request: Request) -> Response:
    async with db(request) as session:
        user = await require(request, session, STAFF)
        # Plain rows, not ORM objects: they stay readable after a rollback.
        sites = (await session.execute(select(Site.slug, Site.name).order_by(Site.name))).all()
        context: dict[str, Any] = {"sites": sites, "kinds": records.KINDS, "natures": records.NATURES, "sources": FUNDING_SOURCES, "form": {}, "error": None,
                   "columns": records.CSV_COLUMNS}
        if request.method == "GET":
            context["form"] = {"kind": request.query_params.get("kind", "grant-notified"), "date": paris_today().isoformat()}
            return render(request, "admin/record.html", context)
        form = await request.form()
        upload = form.get("file")
        try:
            if isinstance(upload, UploadFile) and upload.filename:
                batch = records.parse_csv(await upload.read())
            else:
                fields = {k: str(form.get(k, "")) for k in records.CSV_COLUMNS}
                context["form"] = fields
                batch = [records.Record.of(fields)]
            outcomes = await records.record_many(session, batch, created_by=user.email)
        except records.RecordError as exc:
            await session.rollback()
            context["error"] = str(exc)
            return render(request, "admin/record.html", context, status_code=400)
    created = [o for o in outcomes if o.entry.created]
    flash(
        request,
        _("%(n)s opération(s) enregistrée(s), %(d)s déjà présente(s).", n=len(created), d=len(outcomes) - len(created)),
        "success",
    )
    return redirect_to(request, "journal")


async def closings(request: Request) -> Response:
    async with db(request) as session:
        user = await require(request, session, BOOKS)
        orgs = (await session.scalars(select(Organisation).order_by(Organisation.name))).all()
        if request.method == "POST":
            form = await request.form()
            org = next((o for o in orgs if o.siren == form.get("org")), None)
            if org is None:
                raise HTTPException(400, _("Organisation inconnue."))
            if not user.can(*STAFF, org=org.id):
                raise HTTPException(403)
            year = str(form.get("year", "")).strip()
            try:
                if "year" in form:
                    closing = (await close_year(session, org.id, year, closed_by=user.email)).closing
                else:
                    closing = await close_month(session, org.id, str(form.get("period", "")).strip(), closed_by=user.email)
            except LedgerError as exc:
                await session.rollback()
                flash(request, str(exc), "error")
                return redirect_to(request, "closings")
            if closing.kind == ClosingKind.YEAR:
                flash(request, _("Exercice %(year)s clôturé : ses à-nouveaux ouvrent l'exercice suivant.",
                                 year=year_label(int(closing.period), org.fiscal_year_start_month)), "success")
            else:
                flash(request, _("Période %(period)s clôturée.", period=closing.period), "success")
            return redirect_to(request, "closings")
        rows = (await session.execute(select(Closing, Organisation.name).join(Organisation).order_by(Closing.end_date.desc()))).all()
    return render(request, "admin/closings.html", {"rows": rows, "orgs": orgs})


async def verify(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, BOOKS)
        orgs = (await session.scalars(select(Organisation).order_by(Organisation.name))).all()
    reports = []
    keyring = Keyring.from_settings(request.app.state.settings)
    async with request.app.state.engine.connect() as conn:
        for org in orgs:
            reports.append((org, await verify_org(conn, org.id, keyring=keyring)))
    return render(request, "admin/verify.html", {"reports": reports})


# --- grant reports (compte rendu financier, cerfa 15059) ------------------------------------


async def grants_page(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, BOOKS)
        rows = (await session.execute(select(Grant, Site.name, Organisation.name).join(Site, Site.id == Grant.site_id)
                                      .join(Organisation, Organisation.id == Grant.org_id)
                                      .order_by(Grant.convention_date.desc(), Grant.reference))).all()
    return render(request, "admin/grants.html", {"rows": rows})


async def _grant_report(request: Request, session: AsyncSession, grant: Grant) -> gr.GrantReport:
    params = request.query_params
    raw_year = params.get("year", "").strip()
    try:
        year = int(raw_year) if raw_year else None
        return await gr.grant_report(session, grant, year=year, basis=params.get("basis", "auto") or "auto")
    except ValueError:
        raise HTTPException(400, _("Année invalide : %(value)s", value=raw_year)) from None
    except gr.GrantReportError as exc:
        raise HTTPException(400, str(exc)) from None


async def _grant(request: Request, session: AsyncSession) -> Grant:
    grant = await session.get(Grant, request.path_params["grant_id"])  # another organisation's is not there: 404
    if grant is None:
        raise HTTPException(404)
    return grant


async def grant_report_page(request: Request) -> Response:
    """The report; staff set the action's budget here (CSV pasted: categorie;libelle;montant)."""
    async with db(request) as session:
        user = await require(request, session, BOOKS)
        grant = await _grant(request, session)
        can_edit = user.can(*STAFF, org=grant.org_id)
        if request.method == "POST":
            if not can_edit:
                raise HTTPException(403)
            form = await request.form()
            try:
                lines = gr.parse_budget(str(form.get("budget", "")), grant.currency)
            except gr.GrantReportError as exc:
                flash(request, _("Budget refusé, rien n'a changé : %(detail)s", detail=str(exc)), "error")
                return redirect(request.url.path)
            await gr.set_budget(session, grant, lines, created_by=user.email)
            flash(request, _("Budget de l'action enregistré."), "success")
            return redirect(request.url.path)
        report = await _grant_report(request, session, grant)
        budget = await gr.budget_of(session, grant)
    text = "categorie;libelle;montant\n" + "".join(
        f"{line.category};{line.label};{format_plain(line.amount, line.currency)}\n" for line in budget)
    return render(request, "admin/grant_report.html", {
        "report": report, "grant": grant, "can_edit": can_edit, "budget_text": text, "pct": gr.pct_text,
        "query": request.url.query, "categories": gr.CATEGORIES,
    })


async def grant_report_csv(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, BOOKS)
        report = await _grant_report(request, session, await _grant(request, session))
    return Response(gr.report_csv(report), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{gr.report_filename(report, "csv")}"'})


async def grant_report_pdf(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, BOOKS)
        report = await _grant_report(request, session, await _grant(request, session))
    data = await asyncio.to_thread(gr.report_pdf, report)
    return Response(data, media_type="application/pdf",
                    headers={"content-disposition": f'attachment; filename="{gr.report_filename(report, "pdf")}"'})


routes = [
    Route("/admin", dashboard, name="admin"),
    Route("/admin/reports/grants", grants_page, name="grants"),
    Route("/admin/reports/grants/{grant_id:id}", grant_report_page, methods=["GET", "POST"], name="grant_report"),
    Route("/admin/reports/grants/{grant_id:id}/compte-rendu.csv", grant_report_csv, name="grant_report_csv"),
    Route("/admin/reports/grants/{grant_id:id}/compte-rendu.pdf", grant_report_pdf, name="grant_report_pdf"),
    Route("/admin/ledger", journal, name="journal"),
    Route("/admin/ledger/trial-balance", balance, name="trial_balance"),
    Route("/admin/ledger/record", record, methods=["GET", "POST"], name="record"),
    Route("/admin/ledger/closings", closings, methods=["GET", "POST"], name="closings"),
    Route("/admin/ledger/verify", verify, methods=["POST"], name="verify"),
    Route("/admin/ledger/{siren:str}/{number:id}", entry_detail, methods=["GET", "POST"], name="entry"),
]
