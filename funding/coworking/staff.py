"""Staff pages: members per site (filters, CSV), a member's history, plans and their Stripe
prices, pass days, and the revenue invoiced in advance across a year-end (487)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from sqlalchemy import select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from funding.auth.models import User
from funding.auth.service import end_sessions
from funding.clock import paris_today
from funding.coworking import documents, lifecycle, reports
from funding.coworking.credit_notes import credit_notes_of
from funding.coworking.models import (
    CreditNote,
    Invoice,
    Member,
    Pass,
    PassDay,
    Plan,
    PlanKind,
    PlanPrice,
    Subscription,
)
from funding.coworking.plans import VAT_RATES, price_ttc
from funding.coworking.service import PassError, member_panels, use_pass_day
from funding.db import digits, row_id
from funding.i18n import N_, ngettext
from funding.i18n import day as i18n_day
from funding.i18n import gettext as _
from funding.invoicing.document import InvoiceDocumentError
from funding.mail.models import Email
from funding.orgs.models import Organisation, Site
from funding.pages import asked_page, pager
from funding.web import BOOKS, STAFF, db, flash, pdf_response, redirect_to, render, require

STATUS_LABELS = {
    "active": N_("actif"), "trialing": N_("essai"), "past_due": N_("paiement en retard"), "unpaid": N_("impayé"),
    "canceled": N_("terminé"), "paused": N_("en pause"), "incomplete": N_("premier prélèvement en cours"), "incomplete_expired": N_("expiré"),
    "none": N_("sans abonnement"),
}
INVOICE_LABELS = {"draft": N_("brouillon"), "open": N_("à payer"), "paid": N_("payée"), "void": N_("annulée"),
                  "uncollectible": N_("impayée")}


def page(request: Request, name: str, context: dict, status_code: int = 200) -> Response:
    """render() with what every coworking page uses: status labels and local (Paris) dates."""
    return render(request, name, {"labels": STATUS_LABELS, "invoice_labels": INVOICE_LABELS, "day": lifecycle.local_day,
                                  **context}, status_code=status_code)


async def _filters(request: Request, session) -> dict:
    sites = (await session.scalars(select(Site).order_by(Site.is_central.desc(), Site.name))).all()
    plans = (await session.scalars(select(Plan).where(Plan.kind == PlanKind.WORKSPACE).order_by(Plan.site_id, Plan.position))).all()
    params = request.query_params
    site = next((s for s in sites if s.slug == params.get("site")), None)
    if params.get("site") and site is None:
        raise HTTPException(400, _("Lieu inconnu."))
    status = params.get("status", "")
    if status and status not in reports.STATUS_FILTERS:
        raise HTTPException(400, _("État inconnu."))
    plan_id = row_id(params.get("plan"))
    if params.get("plan") and plan_id not in {p.id for p in plans}:
        raise HTTPException(400, _("Formule inconnue."))
    return {"sites": sites, "plans": plans, "site": site, "status": status, "plan_id": plan_id, "q": params.get("q", "")[:100],
            "query": urlencode([(k, v) for k, v in params.multi_items()])}


async def members(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, BOOKS)
        f = await _filters(request, session)
        site_id, grace = (f["site"].id if f["site"] else None), request.app.state.settings.coworking_grace_days
        if f["status"] or f["plan_id"]:  # computed per member: the whole list, then its page
            every = await reports.member_rows(session, site_id=site_id, status=f["status"], plan_id=f["plan_id"], q=f["q"],
                                              grace_days=grace)
            pages = pager(request, len(every))
            rows = every[pages.offset:pages.offset + pages.per_page]
        else:  # the database reads the page only, and counts the list in the same query
            wanted = asked_page(request)
            total, rows = await reports.member_page(session, site_id=site_id, q=f["q"], grace_days=grace,
                                                    offset=wanted.offset, limit=wanted.per_page)
            pages = pager(request, total)
            if pages.offset != wanted.offset:  # asked past the last page: the last one
                rows = (await reports.member_page(session, site_id=site_id, q=f["q"], grace_days=grace,
                                                  offset=pages.offset, limit=pages.per_page))[1]
    return page(request, "coworking/staff/members.html", {**f, "rows": rows, "pager": pages,
                                                         "statuses": reports.STATUS_FILTERS})


async def members_csv(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, BOOKS)
        f = await _filters(request, session)
        rows = await reports.member_rows(session, site_id=f["site"].id if f["site"] else None, status=f["status"],
                                         plan_id=f["plan_id"], q=f["q"],
                                         grace_days=request.app.state.settings.coworking_grace_days)
    stamp = paris_today().isoformat()
    return Response(reports.members_csv(rows).encode("utf-8-sig"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="membres-coworking-{stamp}.csv"'})


async def member(request: Request) -> Response:
    grace = request.app.state.settings.coworking_grace_days
    async with db(request) as session:
        current = await require(request, session, BOOKS)
        row = await session.get(Member, int(request.path_params["member_id"]))
        if row is None:
            raise HTTPException(404)
        user = await session.get(User, row.user_id)
        site = await session.get(Site, row.site_id)
        subs = (await session.scalars(select(Subscription).where(Subscription.member_id == row.id)
                                      .order_by(Subscription.started_at.desc(), Subscription.id.desc()))).all()
        plans = dict((await session.execute(select(Plan.id, Plan.name))).all())
        invoices = await lifecycle.member_invoices(session, row.id, limit=200)
        notes = await credit_notes_of(session, row.id)
        passes = (await session.scalars(select(Pass).where(Pass.member_id == row.id).order_by(Pass.purchased_at.desc()))).all()
        days = (await session.scalars(select(PassDay).where(PassDay.member_id == row.id).order_by(PassDay.day.desc())
                                      .limit(60))).all()
        emails = (await session.scalars(select(Email).where(Email.user_id == row.user_id).order_by(Email.id.desc())
                                        .limit(100))).all()
        overdue = await lifecycle.overdue_amount(session, row.id)
        access = await lifecycle.member_access(session, row.id, grace_days=grace)
        panels = await member_panels(session, row)
    return page(request, "coworking/staff/member.html", {
        "m": row, "person": user, "site": site, "subs": subs, "plans": plans, "invoices": invoices, "notes": notes, "passes": passes,
        "days": days, "emails": emails, "overdue": overdue, "access": access, "panels": panels,
        "can_edit": current.can(*STAFF, org=row.org_id), "today": paris_today(),
    })


async def pass_day(request: Request) -> Response:
    async with db(request) as session:
        current = await require(request, session, STAFF)
        row = await session.get(Member, int(request.path_params["member_id"]))
        if row is None:
            raise HTTPException(404)
    form = await request.form()
    try:
        day = dt.date.fromisoformat(str(form.get("day", "")))
    except ValueError:
        flash(request, _("Date invalide (AAAA-MM-JJ)."), "error")
        return redirect_to(request, "coworking_member", member_id=row.id)
    try:
        async with db(request) as session:
            found = await use_pass_day(session, row, day=day, recorded_by=current.email)
            left = found.days_total - found.days_used
    except PassError as exc:
        flash(request, str(exc), "error")
    else:
        flash(request, ngettext("Journée du %(day)s décomptée : %(num)s jour restant sur ce pass.",
                                "Journée du %(day)s décomptée : %(num)s jours restants sur ce pass.", left,
                                day=i18n_day(day)), "success")
    return redirect_to(request, "coworking_member", member_id=row.id)


async def member_logout(request: Request) -> Response:
    """Staff end every session of a member (a lost phone, a shared computer): their cookies stop working."""
    async with db(request) as session:
        current = await require(request, session, STAFF)
        row = await session.get(Member, int(request.path_params["member_id"]))
        if row is None:
            raise HTTPException(404)
        if not current.can(*STAFF, org=row.org_id):
            raise HTTPException(403)
        await end_sessions(session, row.user_id)
    flash(request, _("Ce membre est déconnecté de tous ses appareils."), "success")
    return redirect_to(request, "coworking_member", member_id=row.id)


async def plans(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, BOOKS)
        sites = (await session.scalars(select(Site).order_by(Site.is_central.desc(), Site.name))).all()
        rows = (await session.scalars(select(Plan).order_by(Plan.site_id, Plan.position, Plan.id))).all()
        prices = (await session.scalars(select(PlanPrice).order_by(PlanPrice.plan_id, PlanPrice.seq))).all()
    by_plan: dict[int, list[PlanPrice]] = {}
    for price in prices:
        by_plan.setdefault(price.plan_id, []).append(price)
    return page(request, "coworking/staff/plans.html", {
        "sites": sites, "plans": rows, "prices": by_plan, "rates": VAT_RATES, "ttc": price_ttc})


async def deferred(request: Request) -> Response:
    return await _deferred(request, as_csv=False)


async def deferred_csv(request: Request) -> Response:
    return await _deferred(request, as_csv=True)


async def _deferred(request: Request, *, as_csv: bool) -> Response:
    async with db(request) as session:
        await require(request, session, BOOKS)
        orgs = (await session.scalars(select(Organisation).order_by(Organisation.name))).all()
        if not orgs:
            raise HTTPException(404)
        siren = request.query_params.get("org")
        org = next((o for o in orgs if o.siren == siren), None) if siren else orgs[0]
        if org is None:
            raise HTTPException(400, _("Organisation inconnue."))
        raw = request.query_params.get("annee", "")
        if raw and not (digits(raw) and 2000 <= int(raw) <= 2100):
            raise HTTPException(400, _("Année invalide."))
        year = int(raw) if raw else paris_today().year
        report = await reports.deferred_revenue(session, org.id, year)
    if as_csv:
        return Response(reports.deferred_csv(report).encode("utf-8-sig"), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="produits-constates-d-avance-{org.siren}-{year}.csv"'})
    return page(request, "coworking/staff/deferred.html", {"orgs": orgs, "org": org, "year": year, "report": report})


async def invoice_pdf(request: Request) -> Response:
    """A member's invoice as the staff and accountants see it: the same document the member gets."""
    async with db(request) as session:
        await require(request, session, BOOKS)
        invoice = await session.get(Invoice, int(request.path_params["invoice_id"]))
        if invoice is None:
            raise HTTPException(404)
        return await _staff_pdf(request, documents.invoice_document(session, invoice), invoice.member_id)


async def credit_note_pdf(request: Request) -> Response:
    async with db(request) as session:
        await require(request, session, BOOKS)
        note = await session.get(CreditNote, int(request.path_params["note_id"]))
        if note is None:
            raise HTTPException(404)
        return await _staff_pdf(request, documents.credit_note_document(session, note), note.member_id)


async def _staff_pdf(request: Request, building, member_id: int) -> Response:
    try:
        doc = await building
    except InvoiceDocumentError as exc:
        flash(request, str(exc), "error")
        return redirect_to(request, "coworking_member", member_id=member_id)
    return pdf_response(await documents.printed(doc), documents.filename(doc))


routes = [
    Route("/admin/coworking", members, name="coworking_members"),
    Route("/admin/coworking/membres.csv", members_csv, name="coworking_members_csv"),
    Route("/admin/coworking/membres/{member_id:id}", member, name="coworking_member"),
    Route("/admin/coworking/membres/{member_id:id}/journee", pass_day, methods=["POST"], name="coworking_pass_day"),
    Route("/admin/coworking/membres/{member_id:id}/deconnecter", member_logout, methods=["POST"],
          name="coworking_member_logout"),
    Route("/admin/coworking/formules", plans, name="coworking_plans_admin"),
    Route("/admin/coworking/factures/{invoice_id:id}.pdf", invoice_pdf, name="coworking_invoice_pdf"),
    Route("/admin/coworking/avoirs/{note_id:id}.pdf", credit_note_pdf, name="coworking_credit_note_pdf"),
    Route("/admin/coworking/produits-constates-d-avance", deferred, name="coworking_deferred"),
    Route("/admin/coworking/produits-constates-d-avance.csv", deferred_csv, name="coworking_deferred_csv"),
]
