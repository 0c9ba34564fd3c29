"""What a first-time user hit in a real browser (issue 17): invisible buttons, pages wider than
a phone, a widget cropped by its own snippet, a slug pattern the browser ignores, a walk-in
customer sent to the staff login page."""

from __future__ import annotations

import contextlib
import http.server
import re
import threading

import pytest

from funding.auth.models import User
from funding.auth.service import issue_link
from funding.db import create_engine, transaction
from tests.support.db import run_async, sealed_sessions
from tests.support.world import make_world

pytestmark = pytest.mark.browser

PHONES = (390, 360)


def _db(settings, build):
    """Run ``build(sessions)`` on its own loop (Playwright's sync API keeps one in this thread)."""
    async def go():
        engine = create_engine(settings.database_url)
        try:
            return await build(sealed_sessions(engine))
        finally:
            await engine.dispose()

    return run_async(go)


async def _link(sessions, settings, user_id: int, next_path: str = "/") -> str:
    async with transaction(sessions) as session:
        return await issue_link(session, await session.get(User, user_id), settings, next_path=next_path)


def _log_in(page, link: str) -> None:
    page.goto(link)
    page.get_by_role("button", name="Me connecter").click()
    page.wait_for_load_state()


# WCAG relative luminance and contrast of a text against the first opaque background behind it.
CONTRAST_JS = """
el => {
  const parse = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const fg = parse(getComputedStyle(el).color);
  let node = el, bg = [255, 255, 255];
  while (node && node.nodeType === 1) {
    const c = parse(getComputedStyle(node).backgroundColor);
    if (c.length >= 3 && (c.length === 3 || c[3] > 0)) { bg = c.slice(0, 3); break; }
    node = node.parentElement;
  }
  const [a, b] = [lum(fg.slice(0, 3)), lum(bg)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}
"""


def _contrast(locator) -> float:
    return locator.evaluate(CONTRAST_JS)


def _fits(page, url: str) -> None:
    for width in PHONES:
        page.set_viewport_size({"width": width, "height": 800})
        page.goto(url)
        wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, f"{url} is {wide} px wider than a {width} px phone"


def _admin_world(settings):
    from funding.exports.service import add_recipient
    from tests.support.campaigns import make_campaign, paid_pledge, tiers_of
    from tests.support.exports import seed_money

    async def build(sessions):
        world = await make_world(sessions)
        await seed_money(sessions, world)
        campaign = await make_campaign(sessions, world, slug="four-a-pain", goal=50_000, tiers=[
            {"title": "Pain du four", "amount": 2000, "kind": "reward", "value": 800, "vat": 55, "stock": 20},
            {"title": "Merci public", "amount": 1000},
        ])
        reward = (await tiers_of(sessions, campaign.id))[0]
        await paid_pledge(sessions, campaign.id, amount="20", tier=str(reward.id), name="Martine Chabrier", email="martine@example.org")
        async with transaction(sessions) as session:
            await add_recipient(session, world.org_id, "cabinet@example.org", "Cabinet Durolle")
        return world, await _link(sessions, settings, world.users["admin"])

    return _db(settings, build)


def test_admin_buttons_are_readable_and_admin_pages_fit_a_phone(live_server, live_settings, phone):
    _world, link = _admin_world(live_settings)
    page = phone
    _log_in(page, link)

    page.goto(live_server.url + "/admin/campaigns/four-a-pain")
    deliver = page.get_by_role("button", name=re.compile(r"Livrer 1 prévente"))
    withdraw = page.get_by_role("button", name="Retirer").first
    for button in (deliver, withdraw):
        assert _contrast(button) >= 4.5, button
    page.goto(live_server.url + "/admin/exports")
    assert _contrast(page.get_by_role("button", name="Retirer").first) >= 4.5

    for path in ("/admin", "/admin/coworking", "/admin/campaigns", "/admin/campaigns/four-a-pain",
                 "/admin/campaigns/four-a-pain/edit", "/admin/exports", "/admin/ledger"):
        _fits(page, live_server.url + path)


def test_the_vat_of_a_reward_reads_as_a_percentage(live_server, live_settings, phone):
    _world, link = _admin_world(live_settings)
    page = phone
    _log_in(page, link)
    page.goto(live_server.url + "/admin/campaigns/four-a-pain")
    text = page.locator("main").inner_text()
    assert re.search(r"TVA 5,5\s?%", text) and "‰" not in text


def test_the_browser_itself_refuses_a_bad_slug(live_server, live_settings, phone):
    _world, link = _admin_world(live_settings)
    page = phone
    _log_in(page, link)
    page.goto(live_server.url + "/admin/campaigns/new")
    slug = page.get_by_label(re.compile("Adresse de la page"))
    slug.fill("Pas Bon!")
    assert slug.evaluate("el => el.validity.patternMismatch") is True
    slug.fill("four-a-pain-2")
    assert slug.evaluate("el => el.validity.patternMismatch") is False


@contextlib.contextmanager
def _partner_site(body: str):
    """A one-page web site on its own port: a partner's page that embeds our widget."""
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            data = body.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_the_embed_snippet_shows_the_contribute_button_inside_its_frame(live_server, live_settings, phone):
    _world, link = _admin_world(live_settings)
    page = phone
    _log_in(page, link)
    page.goto(live_server.url + "/admin/campaigns/four-a-pain")
    snippet = page.locator(".cf-code").inner_text()
    assert "<iframe" in snippet
    page.set_viewport_size({"width": 1000, "height": 900})
    host = page.context.new_page()
    # A partner's site (another origin, served by another server): nothing but the snippet.
    with _partner_site(f"<!doctype html><html><body style='margin:0'>{snippet}</body></html>") as partner:
        host.goto(partner)
        frame_el = host.locator("iframe")
        frame_el.wait_for()
        frame = frame_el.element_handle().content_frame()
        button = frame.get_by_role("link", name="Contribuer")
        button.wait_for()
        host.wait_for_timeout(500)  # the widget may resize its frame
        outer = frame_el.bounding_box()
        inner = button.bounding_box()
        assert inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5, (inner, outer)
        assert inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5, (inner, outer)
    host.close()


def test_a_walk_in_customer_pays_by_qr_and_lands_on_a_public_thanks_page(live_server, live_settings, browser):
    import html

    import httpx

    from tests.support.bar import make_bar
    from tests.support.web import csrf_of

    async def build(sessions):
        world = await make_world(sessions)
        bar = await make_bar(sessions, world)
        return world, bar, await _link(sessions, live_settings, world.users["staff"])

    world, bar, link = _db(live_settings, build)
    till = f"/bar/{world.site_slug}"
    with httpx.Client(base_url=live_server.url, follow_redirects=False, timeout=30) as staff:
        path = link.replace(live_settings.base_url, "")
        assert staff.post(path, data={"csrf_token": csrf_of(staff.get(path).text)}).status_code == 303
        token = csrf_of(staff.get(f"{till}/caisse").text)

        def checkout_of_a_new_sale() -> str:
            opened = staff.post(f"{till}/comptoir", data={"csrf_token": token})
            ticket = int(opened.headers["location"].rsplit("=", 1)[1])
            staff.post(f"{till}/caisse/vente", data={"csrf_token": token, "product_id": bar.products["Bière locale"],
                                                    "ticket_id": ticket})
            staff.post(f"{till}/comptoir/{ticket}/encaisser", data={"csrf_token": token})
            qr = staff.get(f"{till}/comptoir/{ticket}").text
            return html.unescape(re.search(r'<figcaption><a href="([^"]+)"', qr).group(1))

        paying, turning_back = checkout_of_a_new_sale(), checkout_of_a_new_sale()

    # The customer's own phone: no session of ours.
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="fr-FR", is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(paying)
        page.get_by_label("Adresse e-mail").fill("client@example.org")
        page.locator("#cardholder-name").fill("Client de passage")
        page.locator("#card-number").fill("4242 4242 4242 4242")
        page.locator("#card-expiry").fill("12/34")
        page.locator("#card-cvc").fill("123")
        page.locator("#pay").click()
        page.wait_for_url(re.compile(r".*/bar/[^/]+/comptoir/\d+/merci\?session_id=cs_.*"))
        page.get_by_role("heading", name="Merci !").wait_for()
        assert "4,50" in page.get_by_role("status").inner_text()
        assert "/login" not in page.url

        page.goto(turning_back)
        page.get_by_role("link", name=re.compile("Annuler et retourner")).click()
        page.wait_for_url(re.compile(r".*/bar/[^/]+/comptoir/\d+/paiement-annule$"))
        page.get_by_role("heading", name="Paiement annulé").wait_for()
        assert "Rien n'a été débité" in page.get_by_role("status").inner_text()
    finally:
        context.close()


def test_the_member_area_fits_a_phone_with_its_invoices_pdf_in_view(live_server, live_settings, phone):
    from sqlalchemy import select, update

    from funding.coworking.models import Subscription
    from tests.support.browser import join as _join
    from tests.support.browser import prepare as _prepare

    world = _prepare(live_settings)
    address = "julie.fayolle@example.org"
    live_server.settings = live_settings  # what _join reads
    _join(live_server, world, address)

    async def member_link(sessions):
        async with sessions() as session:
            user = await session.scalar(select(User).where(User.email == address))
        return await _link(sessions, live_settings, user.id, "/membre")

    page = phone
    _log_in(page, _db(live_settings, member_link))
    page.wait_for_url(live_server.url + "/membre")
    pdf_link = page.get_by_role("link", name=re.compile(r"^PDF"))
    for _ in range(60):  # the first invoice arrives by webhook
        if pdf_link.count():
            break
        page.wait_for_timeout(500)
        page.reload()

    def check():
        for width in PHONES:
            page.set_viewport_size({"width": width, "height": 800})
            page.reload()
            assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0, width
            pdf = page.get_by_role("link", name=re.compile(r"^PDF")).first
            box = pdf.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (width, box)

    check()

    async def past_due(sessions):
        async with transaction(sessions) as session:
            await session.execute(update(Subscription).values(status="past_due"))

    _db(live_settings, past_due)
    check()


IN_VIEW_JS = "el => { const r = el.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0; }"


def test_the_phone_till_shows_products_first_answers_in_view_and_undoes_in_place(live_server, live_settings, phone):
    from tests.support.bar import make_bar

    async def build(sessions):
        world = await make_world(sessions)
        bar = await make_bar(sessions, world)
        return world, bar, await _link(sessions, live_settings, world.users["staff"])

    world, bar, link = _db(live_settings, build)
    page = phone
    _log_in(page, link)
    page.wait_for_url(f"{live_server.url}/bar/{world.site_slug}/caisse")  # staff land on their till
    page.goto(f"{live_server.url}/bar/{world.site_slug}/caisse?membre={bar.members[0]}")
    first = page.locator("button.product").first
    box = first.bounding_box()
    assert box["y"] + box["height"] <= 844, f"the first product starts at {box['y']} px"

    # The last product, scrolled to: the answer shows where the eye is.
    sandwich = page.get_by_role("button", name=re.compile("^Sandwich"))
    sandwich.scroll_into_view_if_needed()
    sandwich.click()
    status = page.get_by_role("status").filter(has_text="Sandwich ajouté")
    status.wait_for()
    assert status.evaluate(IN_VIEW_JS), status.bounding_box()

    # The line just added can be undone at once, without a reload.
    line = page.locator("ol.tab-lines > li").first
    line.get_by_text("Annuler", exact=True).click()
    line.get_by_label("Motif de l'annulation").fill("Erreur de touche")
    line.get_by_role("button", name="Annuler cette ligne").click()
    page.get_by_text("Ligne annulée : Sandwich").wait_for()
    assert page.locator("[data-balance]").inner_text() == "0,00\u00a0€"
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


def test_a_refused_contribution_shows_its_error_in_view_with_the_form_kept(live_server, live_settings, phone):
    from tests.support.campaigns import make_campaign

    async def build(sessions):
        world = await make_world(sessions)
        await make_campaign(sessions, world, slug="atelier-velo", max_amount=10_000)

    _db(live_settings, build)
    page = phone
    page.goto(live_server.url + "/campagnes/atelier-velo")
    page.get_by_label("Montant (en EUR)").fill("5000")  # above the campaign's maximum of 100 €
    page.get_by_label("Nom et prénom").fill("Karim Benali")
    page.get_by_label("Adresse e-mail (pour le reçu)").fill("karim.benali@example.fr")
    page.get_by_label("Numéro et rue").fill("12 rue de la Coutellerie")
    page.get_by_label("Code postal").fill("63300")
    page.get_by_label("Ville").fill("Thiers")
    page.get_by_role("button", name="Contribuer par carte").click()
    error = page.get_by_role("alert")
    error.wait_for()
    page.wait_for_function("document.activeElement && document.activeElement.getAttribute('role') === 'alert'")
    assert error.evaluate(IN_VIEW_JS), error.bounding_box()
    assert page.get_by_label("Nom et prénom").input_value() == "Karim Benali"
    assert page.get_by_label("Montant (en EUR)").input_value() == "5000"

    page.goto(live_server.url + "/campagnes/atelier-velo?annule=1")
    canceled = page.get_by_text("Paiement annulé")  # where the campaign's Checkout sends people back
    canceled.wait_for()
    page.wait_for_function("document.activeElement && document.activeElement.hasAttribute('data-focus')")
    assert canceled.evaluate(IN_VIEW_JS)


def test_publishing_a_campaign_asks_for_a_second_explicit_tap(live_server, live_settings, phone):
    from tests.support.campaigns import make_campaign

    async def build(sessions):
        world = await make_world(sessions)
        await make_campaign(sessions, world, slug="brouillon", status="draft")
        return await _link(sessions, live_settings, world.users["admin"])

    page = phone
    _log_in(page, _db(live_settings, build))
    page.goto(live_server.url + "/admin/campaigns/brouillon")
    page.get_by_text("Publier", exact=True).click()  # opens the confirmation, publishes nothing
    assert page.url.endswith("/admin/campaigns/brouillon")
    assert page.locator(".cf-badge").first.inner_text() == "Brouillon"
    page.get_by_role("button", name="Oui, publier la campagne").click()
    page.wait_for_load_state()
    page.goto(live_server.url + "/admin/campaigns/brouillon")
    assert page.locator(".cf-badge").first.inner_text() == "En cours"


def test_the_qr_page_shows_the_payment_in_place_without_reloading(live_server, live_settings, browser, phone):
    """The staff's QR page has no meta refresh (axe: meta-refresh, WCAG 2.2.1): it asks the server
    every few seconds and, once the customer has paid, shows "Payé" in place, focus on it, without
    a navigation."""
    from tests.support.bar import make_bar

    async def build(sessions):
        world = await make_world(sessions)
        bar = await make_bar(sessions, world)
        return world, bar, await _link(sessions, live_settings, world.users["staff"])

    world, _bar, link = _db(live_settings, build)
    page = phone
    _log_in(page, link)
    page.goto(f"{live_server.url}/bar/{world.site_slug}/caisse")
    page.get_by_role("button", name="Vente comptoir (paiement immédiat)").click()
    page.wait_for_url(re.compile(r".*[?&]comptoir=\d+"))
    page.get_by_role("button", name=re.compile("^Bière locale")).click()
    page.get_by_role("status").filter(has_text="Bière locale").wait_for()
    page.get_by_role("button", name=re.compile("par carte")).first.click()
    page.wait_for_url(re.compile(rf".*/bar/{world.site_slug}/comptoir/\d+$"))
    assert page.locator("meta[http-equiv=refresh]").count() == 0
    checkout = page.get_by_role("link", name="Ouvrir la page de paiement sur cet appareil").get_attribute("href")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)

    customer = browser.new_context(viewport={"width": 390, "height": 844}, locale="fr-FR", is_mobile=True, has_touch=True)
    try:
        paying = customer.new_page()
        paying.goto(checkout)
        paying.get_by_label("Adresse e-mail").fill("client@example.org")
        paying.locator("#cardholder-name").fill("Client de passage")
        paying.locator("#card-number").fill("4242 4242 4242 4242")
        paying.locator("#card-expiry").fill("12/34")
        paying.locator("#card-cvc").fill("123")
        paying.locator("#pay").click()
        paying.get_by_role("heading", name="Merci !").wait_for()
    finally:
        customer.close()

    paid = page.get_by_role("status").filter(has_text="Payé. Merci !")
    paid.wait_for(timeout=20_000)
    assert navigations == []  # shown in place: the page was never reloaded
    assert page.evaluate("document.activeElement.textContent").strip() == "Payé. Merci !"
    assert page.locator("[data-wait]").count() == 0  # asks no more
