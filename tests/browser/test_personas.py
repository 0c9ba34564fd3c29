"""Issue 17, done when: each persona plays their whole journey through the real pages, in
Debian's chromium against a live server and the Stripe sandbox, on a desktop and on a phone, in
French and in English. Each case checks what the persona reads in their language (a few key
words per page), that nothing answers 5xx, that the phone never scrolls sideways, and that the
journey's effect happened (the pledge in the backer space, the plan changed, the sale paid, the
export downloaded, the update on the campaign page)."""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from funding.auth.models import User
from funding.db import transaction
from funding.i18n import translations
from funding.settings import load_settings
from tests.support.db import TEST_SEAL_KEY
from tests.support.e2e import db_call
from tests.support.live import LiveServer, free_port
from tests.support.world import make_world

pytestmark = pytest.mark.browser

DEVICES = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
LANGUAGES = {"fr": "fr-FR", "en": "en-GB"}
CASES = [pytest.param(device, lang, id=f"{device}-{lang}") for device in DEVICES for lang in LANGUAGES]
GOOD, THREE_D_SECURE, DECLINED = "4242 4242 4242 4242", "4000 0027 6000 3184", "4000 0000 0000 0002"
SAME_IN_ENGLISH = {"Exports", "Format", "Description"}  # words English writes as French does
IN_VIEW_JS = "el => { const r = el.getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0; }"


@pytest.fixture
def live_settings(database_url, tmp_path):
    """The browser tests' settings, with uploads kept in the test's directory and a quick mail worker."""
    port = free_port()
    return load_settings({}, FUNDING_ENV="test", LEDGER_SEAL_KEY=TEST_SEAL_KEY, DATABASE_URL=database_url,
                         SECRET_KEY="browser-secret-0123456789", BASE_URL=f"http://127.0.0.1:{port}",
                         MEDIA_DIR=str(tmp_path / "media"), WORKER_POLL_SECONDS="0.2")


@pytest.fixture
def live_server(live_settings):
    """The app and the sandbox on one port. Webhooks arrive politely here (once, in order, when
    due): the chaotic deliveries of the other end-to-end tests double these journeys' time and
    test nothing a persona sees (SANDBOX_DELIVERY=chaos brings them back)."""
    from tests.support.e2e import e2e_sandbox, served

    sandbox = e2e_sandbox(live_settings, delivery=os.environ.get("SANDBOX_DELIVERY") or "polite")
    with LiveServer(served(live_settings, sandbox), int(live_settings.base_url.rsplit(":", 1)[1])) as server:
        yield server


class Visit:
    """One persona's browser (a context of the module's chromium) in one language on one device:
    it remembers every 5xx and every script the page's CSP blocked."""

    def __init__(self, browser, server, device: str, lang: str):
        self.server, self.device, self.lang = server, device, lang
        self.context = browser.new_context(locale=LANGUAGES[lang], accept_downloads=True, **DEVICES[device])
        self.context.set_default_timeout(15_000)
        self.failures: list[str] = []
        self.context.on("response", lambda r: self.failures.append(f"{r.status} {r.url}") if r.status >= 500 else None)
        self.page = self.context.new_page()
        self._watch(self.page)
        self.catalog = translations(lang)

    def _watch(self, page) -> None:
        page.on("console", lambda m: self.failures.append(m.text) if "Content Security Policy" in m.text else None)

    def new_page(self):
        page = self.context.new_page()
        self._watch(page)
        return page

    def t(self, message: str, **variables) -> str:
        """The words as this persona's language has them (in English, they must be translated)."""
        text = self.catalog.gettext(message)
        if self.lang != "fr" and message not in SAME_IN_ENGLISH:
            assert text != message, f"not translated into {self.lang}: {message!r}"
        return text % variables if variables else text

    def go(self, path: str) -> None:
        self.page.goto(self.server.url + path)

    def sees(self, *messages: str, page=None) -> None:
        """Each message (a French msgid) is on the page, in the persona's language; then the checks of every page."""
        page = page or self.page
        page.wait_for_load_state()
        text = page.locator("body").inner_text()
        for message in messages:
            words = self.t(message)
            assert words in text, f"{page.url}: {words!r} not in the page"
        self.fits(page)

    def shows(self, *texts: str, page=None) -> None:
        """Each text (already in the persona's language) is on the page; then the checks of every page."""
        page = page or self.page
        page.wait_for_load_state()
        body = page.locator("body").inner_text()
        for text in texts:
            assert text in body, f"{page.url}: {text!r} not in the page"
        self.fits(page)

    def fits(self, page=None) -> None:
        page = page or self.page
        assert page.evaluate("document.documentElement.lang") == self.lang or "/_sandbox/" in page.url, page.url
        if self.device == "phone":
            wide = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
            assert wide[0] <= wide[1], f"{page.url} scrolls sideways on a phone: {wide}"
        assert self.failures == [], self.failures

    def close(self) -> None:
        self.context.close()
        assert self.failures == [], self.failures


@pytest.fixture
def visit(request, browser, live_server, live_settings):
    live_server.settings = live_settings
    visits: list[Visit] = []

    def open_visit(device: str, lang: str) -> Visit:
        visits.append(Visit(browser, live_server, device, lang))
        return visits[-1]

    yield open_visit
    for v in visits:
        v.close()


def speaks(settings, lang: str, *user_ids: int) -> None:
    """People of the seeded world who chose the persona's language (an account keeps its own)."""
    async def go(sessions):
        async with transaction(sessions) as session:
            await session.execute(update(User).where(User.id.in_(user_ids)).values(locale=lang))

    db_call(settings, go)


def mailbox_link(v: Visit, address: str, pattern: str) -> str:
    """The first link matching ``pattern`` in the newest email to ``address`` in the development mailbox."""
    box = v.new_page()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            box.goto(v.server.url + "/dev/mailbox")
            mail = box.locator("article.mail").filter(has_text=address)
            if mail.count():
                found = re.search(pattern, mail.first.locator("pre").inner_text())
                if found:
                    return found.group(0)
            box.wait_for_timeout(300)
        raise AssertionError(f"no email to {address} with {pattern} in the development mailbox")
    finally:
        box.close()


def log_in(v: Visit, address: str) -> None:
    """Through /login and the emailed link, as a person does."""
    v.go("/login")
    v.page.get_by_label(v.t("Adresse e-mail")).fill(address)
    v.page.get_by_role("button", name=v.t("Recevoir un lien de connexion")).click()
    v.page.wait_for_load_state()
    v.sees("Si un compte correspond à cette adresse, un lien de connexion vient de lui être envoyé. Il est valable "
           "quelques minutes et ne sert qu'une fois.")
    v.page.goto(mailbox_link(v, address, r"http://127\.0\.0\.1:\d+/login/[^\s<\"]+"))
    v.page.get_by_role("button", name=v.t("Me connecter")).click()
    v.page.wait_for_load_state()


def pay_by_card(v: Visit, card: str, *, name: str, email: str | None = None) -> None:
    """The sandbox's hosted Checkout page (Stripe's own page: French whatever the persona's language)."""
    page = v.page
    page.wait_for_url(re.compile(r".*/_sandbox/stripe/checkout/cs_\w+"))
    if email is not None and page.locator("#email").count():
        page.locator("#email").fill(email)
    page.locator("#cardholder-name").fill(name)
    page.locator("#card-number").fill(card)
    page.locator("#card-expiry").fill("12/34")
    page.locator("#card-cvc").fill("123")
    page.locator("#pay").click()
    page.wait_for_load_state()
    v.fits()


def reload_until(v: Visit, ready, *, what: str, timeout: float = 20.0) -> None:
    """Webhooks land when Stripe sends them: reload until the page shows their effect."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{v.page.url}: timed out waiting for {what}")
        v.page.wait_for_timeout(300)
        v.page.reload()


def fill_address(v: Visit) -> None:
    v.page.get_by_label(v.t("Numéro et rue")).fill("12 rue de la Coutellerie")
    v.page.get_by_label(v.t("Code postal")).fill("63300")
    v.page.get_by_label(v.t("Ville")).fill("Thiers")


# --- the backer --------------------------------------------------------------------------------


@pytest.mark.parametrize(("device", "lang"), CASES)
def test_backer_gives_with_3ds_pledges_after_a_declined_card_and_finds_both_in_their_space(visit, live_settings, device, lang):
    from tests.support.campaigns import make_campaign

    async def build(sessions):
        world = await make_world(sessions)
        await make_campaign(sessions, world, slug="four-solaire", mode="all_or_nothing", goal=100_000)
        return world

    db_call(live_settings, build)
    v = visit(device, lang)
    page = v.page
    backer, address = "Karim Benali", f"karim.{device}.{lang}@example.fr"

    # A one-off gift, paid with a card whose bank asks for 3-D Secure.
    v.go("/soutenir")
    v.sees("Soutenir un tiers-lieu")
    page.get_by_label(v.t("Autre montant (en euros)")).fill("30")
    page.get_by_label(v.t("Nom et prénom")).fill(backer)
    page.get_by_label(v.t("Adresse e-mail (pour le reçu)")).fill(address)
    fill_address(v)
    page.get_by_role("button", name=v.t("Donner par carte")).click()
    pay_by_card(v, THREE_D_SECURE, name=backer, email=address)
    page.wait_for_url(re.compile(r".*/_sandbox/stripe/authenticate/.*"))
    page.locator("#authenticate").click()
    page.wait_for_url(re.compile(r".*/soutenir/merci\?session_id=cs_\w+"))
    reload_until(v, lambda: page.get_by_role("heading", name=v.t("Merci !")).count(), what="the gift paid")
    v.sees("Merci !")

    # A promise to an all-or-nothing campaign: the first card is declined, the second saved.
    v.go("/campagnes/four-solaire")
    v.sees("Tout ou rien", "Contribuer")
    page.get_by_label(v.t("Montant (en %(currency)s)", currency="EUR")).fill("40")
    page.get_by_label(v.t("Nom et prénom")).fill(backer)
    page.get_by_label(v.t("Adresse e-mail (pour le reçu)")).fill(address)
    fill_address(v)
    page.get_by_role("button", name=v.t("Enregistrer ma carte")).click()
    pay_by_card(v, DECLINED, name=backer, email=address)
    error = page.get_by_role("alert")
    error.wait_for()
    assert "refusée" in error.inner_text() and error.evaluate(IN_VIEW_JS), error.bounding_box()
    assert page.locator("#cardholder-name").input_value() == backer  # what was typed is kept
    pay_by_card(v, GOOD, name=backer, email=address)
    page.wait_for_url(re.compile(r".*/campagnes/four-solaire/merci\?session_id=cs_\w+"))
    reload_until(v, lambda: page.get_by_role("heading", name=v.t("Merci, votre promesse est enregistrée !")).count(),
                 what="the card saved")
    v.sees("Merci, votre promesse est enregistrée !")

    # Later, from any browser: /login, the emailed link, and the backer space lists both.
    v.context.clear_cookies()
    log_in(v, address)
    page.wait_for_url(re.compile(r".*/mes-contributions$"))
    v.sees("Mes contributions", "Contributions et promesses", "Reçus fiscaux")
    pledge = page.locator(".cf-backer-list li").filter(has_text="Campagne four-solaire")
    assert pledge.count() == 1
    assert v.t("carte enregistrée") in pledge.locator(".cf-badge").inner_text()
    assert re.search(r"40[,.]00", pledge.inner_text())
    receipts = page.get_by_role("region", name=v.t("Reçus fiscaux")).locator("tbody tr")
    reload_until(v, lambda: receipts.count() == 1, what="the gift's tax receipt")
    row = receipts.first
    assert re.search(r"30[,.]00", row.inner_text()) and v.t("valable") in row.inner_text()
    row.get_by_role("link").click()
    page.wait_for_load_state()
    v.fits()


# --- the member ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("device", "lang"), CASES)
def test_member_joins_lands_in_their_area_changes_plan_cancels_undoes_and_visits_the_portal(visit, live_settings,
                                                                                         device, lang):
    from tests.support.browser import prepare

    world = prepare(live_settings)
    v = visit(device, lang)
    page = v.page
    name, address = "Julie Fayolle", f"julie.{device}.{lang}@example.fr"

    # Joining: the plans, the form, the emailed link, Stripe's Checkout, the welcome page.
    v.go(f"/coworking/{world.site_slug}")
    v.sees("Choisir")
    page.get_by_role("link", name=f"{v.t('Choisir')} Poste nomade").click()
    page.get_by_label(v.t("Nom et prénom")).fill(name)
    page.get_by_label(v.t("Adresse e-mail")).fill(address)
    page.get_by_role("button", name=v.t("S'abonner et payer par carte")).click()
    page.get_by_role("status").wait_for()
    v.shows(v.t("Nous venons d'écrire à %(email)s : ouvrez le lien de ce message pour poursuivre votre adhésion. Rien reçu "
                "d'ici quelques minutes ? Vérifiez l'adresse et le dossier des indésirables.", email=address))
    page.goto(mailbox_link(v, address, r"http://127\.0\.0\.1:\d+/coworking/\S+/confirmer/[^\s<\"]+"))
    page.get_by_role("button", name=v.t("S'abonner et payer par carte")).click()
    pay_by_card(v, GOOD, name=name)
    page.wait_for_url(re.compile(r".*/coworking/bienvenue\?.*"))
    active = v.t("Votre abonnement « %(plan)s » est actif.", plan="Poste nomade")
    reload_until(v, lambda: active in page.locator("main").inner_text(), what="the subscription active")
    v.sees("Bienvenue !")

    # Straight into the member area: no second login.
    page.get_by_role("link", name=v.t("Mon espace membre")).click()
    page.wait_for_url(re.compile(r".*/membre$"))
    v.sees("Mon abonnement", "Formule")
    assert "Poste nomade" in page.locator("main").inner_text()

    # A plan change, with Stripe's preview first.
    page.get_by_role("link", name=v.t("Changer de formule")).click()
    v.sees("Changer de formule")
    page.get_by_label(re.compile("Poste fixe")).check()
    page.get_by_role("button", name=v.t("Voir le montant à payer")).click()
    page.get_by_role("heading", name=re.compile(re.escape(v.t("Aperçu : de « %(from)s » à « %(to)s »",
                                                            **{"from": "Poste nomade", "to": "Poste fixe"})))).wait_for()
    v.fits()
    page.get_by_role("button", name=v.t("Confirmer le changement")).click()
    page.wait_for_url(re.compile(r".*/membre$"))
    v.shows(v.t("Votre formule est maintenant « %(plan)s ».", plan="Poste fixe"))
    facts = page.locator("dl.facts").first
    assert "Poste fixe" in facts.inner_text()

    # Cancelling at the period's end, then changing one's mind.
    page.get_by_role("button", name=v.t("Résilier à la fin de la période")).click()
    page.wait_for_url(re.compile(r".*/membre$"))
    v.sees("Fin de l'abonnement")
    page.get_by_role("button", name=v.t("Reprendre mon abonnement")).click()
    page.wait_for_url(re.compile(r".*/membre$"))
    v.sees("Votre abonnement continue.", "Prochain paiement")
    assert page.get_by_role("button", name=v.t("Résilier à la fin de la période")).count() == 1

    # Stripe's portal for the card, and back.
    page.get_by_role("button", name=v.t("Mettre à jour ma carte bancaire")).click()
    page.wait_for_url(re.compile(r".*/_sandbox/stripe/portal/.*"))
    v.fits()
    page.get_by_role("link", name="Retour au site").click()
    page.wait_for_url(re.compile(r".*/membre$"))
    v.sees("Mon abonnement")


# --- the bar's staff and a walk-in customer ------------------------------------------------------


@pytest.mark.parametrize(("device", "lang"), CASES)
def test_staff_rings_up_a_tab_undoes_a_line_and_a_walk_in_customer_pays_by_qr(visit, live_settings, device, lang):
    from funding.money import format_money
    from tests.support.bar import make_bar

    async def build(sessions):
        world = await make_world(sessions)
        return world, await make_bar(sessions, world)

    world, _bar = db_call(live_settings, build)
    speaks(live_settings, lang, world.users["staff"])
    suffix = world.siren[-4:]
    v = visit(device, lang)
    page = v.page

    def euros(cents: int) -> str:
        return format_money(cents, "EUR", lang)

    # Staff log in and land on their till.
    log_in(v, f"staff-{suffix}@example.org")
    page.wait_for_url(re.compile(rf".*/bar/{world.site_slug}/caisse$"))
    v.sees("Caisse", "Vente comptoir (paiement immédiat)")

    # A member's tab: two taps, then the first line undone where it is.
    page.get_by_label(v.t("Membre (nom ou e-mail)")).fill("Member")
    page.get_by_role("button", name=v.t("Chercher")).click()
    page.get_by_role("link", name=f"Member {suffix}").click()
    v.shows(v.t("Ardoise de %(name)s", name=f"Member {suffix}"))
    status = page.locator("[data-status]")
    for product, price, balance in (("Café", 150, 150), ("Bière locale", 450, 600)):
        page.get_by_role("button", name=re.compile(f"^{product}")).click()
        status.filter(has_text=v.t("%(label)s ajouté (%(amount)s).", label=product, amount=euros(price))).wait_for()
        page.locator("[data-balance]").filter(has_text=euros(balance)).wait_for()
    line = page.locator("ol.tab-lines > li").filter(has_text="Café").first
    line.get_by_text(v.t("Annuler"), exact=True).click()
    line.get_by_label(v.t("Motif de l'annulation")).fill("Erreur de touche")
    line.get_by_role("button", name=v.t("Annuler cette ligne")).click()
    page.get_by_text(v.t("Ligne annulée : %(label)s (%(amount)s), motif « %(reason)s ».", label="Café", amount=euros(-150),
                         reason="Erreur de touche")).wait_for()
    v.shows(v.t("Ligne annulée : %(label)s (%(amount)s), motif « %(reason)s ».", label="Café", amount=euros(-150),
                reason="Erreur de touche"))
    assert page.locator("[data-balance]").inner_text() == euros(450)

    # A walk-in sale, paid by the customer's own phone from the QR code.
    page.get_by_role("button", name=v.t("Vente comptoir (paiement immédiat)")).click()
    page.wait_for_url(re.compile(r".*[?&]comptoir=\d+"))
    v.sees("Lignes de la vente")
    page.get_by_role("button", name=re.compile("^Bière locale")).click()
    page.locator("[data-balance]").filter(has_text=euros(450)).wait_for()
    page.get_by_role("button", name=v.t("Encaisser par carte (QR code)")).click()
    page.wait_for_url(re.compile(rf".*/bar/{world.site_slug}/comptoir/\d+$"))
    v.sees("Le client scanne ce code avec son téléphone et paie par carte. Cette page se met à jour toute seule.")
    assert page.locator("figure.qr-box svg").count() == 1
    checkout = page.locator("figure.qr-box figcaption a").get_attribute("href")
    till = page.url

    customer = visit(device, lang)  # another phone: no session of ours
    customer.page.goto(checkout)
    pay_by_card(customer, GOOD, name="Client de passage", email="client@example.org")
    customer.page.wait_for_url(re.compile(r".*/bar/[^/]+/comptoir/\d+/merci\?session_id=cs_\w+"))
    assert "/login" not in customer.page.url
    customer.sees("Merci !")
    assert euros(450) in customer.page.get_by_role("status").inner_text()

    # The sale is settled on the staff's screen.
    page.goto(till)
    reload_until(v, lambda: v.t("Payé. Merci !") in page.locator("main").inner_text(), what="the walk-in sale paid")
    v.sees("Payé. Merci !")


# --- the accountant ------------------------------------------------------------------------------


@pytest.mark.parametrize(("device", "lang"), CASES)
def test_accountant_downloads_the_fec_and_the_journal(visit, live_settings, device, lang):
    from tests.support.exports import seed_money

    async def build(sessions):
        world = await make_world(sessions)
        await seed_money(sessions, world)
        return world

    world = db_call(live_settings, build)
    speaks(live_settings, lang, world.users["accountant"])
    v = visit(device, lang)
    page = v.page

    log_in(v, f"accountant-{world.siren[-4:]}@example.org")
    page.wait_for_url(re.compile(r".*/admin$"))
    v.sees("Gestion", "Mon compte")
    page.get_by_role("link", name=v.t("Exports"), exact=True).click()
    page.wait_for_url(re.compile(r".*/admin/exports$"))
    v.sees("Exports comptables", "Télécharger", "Journal des exports")
    start, end = page.locator("input[name=from]").input_value(), page.locator("input[name=to]").input_value()
    compact = start.replace("-", ""), end.replace("-", "")

    def download(fmt: str, label: str, name: str) -> bytes:
        chooser = page.get_by_label(v.t("Format"))
        chooser.select_option(fmt)
        assert chooser.locator("option:checked").inner_text() == label
        with page.expect_download() as event:
            page.get_by_role("button", name=v.t("Télécharger"), exact=True).click()
        got = event.value
        assert re.fullmatch(name, got.suggested_filename), got.suggested_filename
        data = Path(got.path()).read_bytes()
        assert data.count(b"\n") >= 5, data[:300]  # a header and the seeded month's entries
        return data

    fec = download("fec", "FEC", rf"{world.siren}FEC\d{{8}}(_\d{{6}})?\.txt")
    assert fec.startswith(b"JournalCode\tJournalLib\t")
    journal = download("csv", v.t("Journal général (CSV)"), rf"journal-{world.siren}-{compact[0]}-{compact[1]}\.csv")
    assert b"Thiers" in journal or b"75411" in journal
    # Each download is on the record, in the accountant's language.
    page.reload()
    log = page.locator("#export-log tbody tr")
    assert log.count() == 2, log.all_inner_texts()
    v.sees("Journal des exports")


# --- the campaign's admin ------------------------------------------------------------------------


def a_photo() -> bytes:
    """A small PNG, as a phone's gallery would hand over (in miniature)."""
    from PIL import Image

    picture = Image.new("RGB", (160, 100), (200, 90, 40))
    for x in range(0, 160, 20):
        for y in range(100):
            picture.putpixel((x, y), (30, 60, 120))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(("device", "lang"), CASES)
def test_campaign_admin_creates_a_campaign_with_an_image_publishes_it_and_posts_an_update(visit, live_settings, device,
                                                                                       lang):
    import datetime as dt

    import httpx

    world = db_call(live_settings, make_world)
    speaks(live_settings, lang, world.users["admin"])
    v = visit(device, lang)
    page = v.page
    slug, title = f"four-a-pain-{device}-{lang}", "Un four à pain pour le quartier"

    log_in(v, f"admin-{world.siren[-4:]}@example.org")
    page.wait_for_url(re.compile(r".*/admin$"))
    page.get_by_role("link", name=v.t("Gérer les campagnes")).click()
    v.sees("Campagnes de financement participatif")
    page.get_by_role("link", name=v.t("Nouvelle campagne")).click()
    page.get_by_role("heading", name=v.t("Nouvelle campagne")).wait_for()
    v.fits()

    # The form, an image from the device included.
    page.get_by_label(v.t("Adresse de la page (/campagnes/…)")).fill(slug)
    page.get_by_label(v.t("Titre"), exact=True).fill(title)
    page.get_by_label(v.t("Résumé (une phrase)")).fill("Du pain cuit au bois, le samedi")
    page.get_by_label(v.t("Description")).fill("Un **four** partagé.")
    page.get_by_label(re.compile(re.escape(v.t("Image : une photo (JPEG, PNG ou WebP, 8 Mo au plus)")))).set_input_files(
        {"name": "four.png", "mimeType": "image/png", "buffer": a_photo()})
    page.get_by_label(v.t("Objectif")).fill("500")
    now = dt.datetime.now()
    page.get_by_label(v.t("Début (heure de Paris)")).fill((now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label(v.t("Fin (heure de Paris)")).fill((now + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name=v.t("Enregistrer"), exact=True).click()
    page.wait_for_url(re.compile(rf".*/admin/campaigns/{slug}$"))
    v.sees("Brouillon créé : ajoutez ses contreparties, puis publiez-le.")
    badge = page.locator(".cf-badge").first
    assert badge.inner_text() == v.t("Brouillon")

    # Publishing takes a second, explicit tap.
    page.get_by_text(v.t("Publier"), exact=True).click()
    assert badge.inner_text() == v.t("Brouillon")
    page.get_by_role("button", name=v.t("Oui, publier la campagne")).click()
    page.get_by_text(v.t("Campagne publiée : elle est en ligne.")).wait_for()
    assert page.locator(".cf-badge").first.inner_text() == v.t("En cours")
    v.fits()

    # News for the backers.
    page.get_by_text(v.t("Publier une nouvelle"), exact=True).click()
    news_form = page.get_by_role("region", name=v.t("Nouvelles aux contributeurs"))
    news_form.get_by_label(v.t("Titre"), exact=True).fill("Le four est commandé")
    news_form.get_by_label(v.t("Texte"), exact=True).fill("Livraison prévue le mois prochain.")
    news_form.get_by_role("button", name=v.t("Publier et envoyer")).click()
    page.get_by_text(v.catalog.ngettext("Nouvelle publiée et envoyée à %(num)s contributeur.",
                                        "Nouvelle publiée et envoyée à %(num)s contributeurs.", 0) % {"num": 0}).wait_for()
    v.fits()

    # The public page: the image, its link preview and the update.
    v.go(f"/campagnes/{slug}")
    v.sees("Nouvelles du projet", "Contribuer")
    image = page.locator("img.cf-image")
    assert image.evaluate("img => img.complete && img.naturalWidth") == 1200
    og = page.locator("meta[property='og:image']").get_attribute("content")
    assert og.startswith(v.server.url + "/media/"), og
    fetched = httpx.get(og, timeout=10)
    assert fetched.status_code == 200 and fetched.headers["content-type"].startswith("image/") and fetched.content
    news = page.get_by_role("region", name=v.t("Nouvelles du projet"))
    assert "Le four est commandé" in news.inner_text() and "Livraison prévue le mois prochain." in news.inner_text()
