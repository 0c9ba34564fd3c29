"""No input answers 500: Hypothesis drives every route of the application — its path
parameters, every query parameter and form field the code reads, and the headers we parse —
with hostile values, as each role, and every answer must be below 500; a refusal (4xx)
changes no row. The corpus holds what fuzzing found before (``tier=²``, ids beyond 64 bits,
a non-ASCII ``Stripe-Signature``…); Hypothesis adds its own on top."""

from __future__ import annotations

import pathlib
import re
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from funding.auth.models import User
from funding.auth.service import issue_link
from funding.db import transaction

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Every name the code reads from a query string or a form (request.query_params.get("x"), form.get("x"), form["x"]…).
_READ = re.compile(r"""(?:query_params|form|params|data|fields)(?:\.get(?:list)?\(|\[)\s*["']([A-Za-z_][\w\-]{0,40})["']""")
FIELDS = sorted({name for path in [*ROOT.joinpath("funding").rglob("*.py"), *ROOT.joinpath("webhooks").rglob("*.py")]
                 if "sandbox" not in path.parts for name in _READ.findall(path.read_text(encoding="utf-8"))})

CORPUS = [
    "", " ", "0", "-1", "1", "²", "٣", "1e309", "NaN", "inf", "-0", "9" * 30, str(2**63), str(-(2**63) - 1), "0x1f",
    "1,5", "1 234,56", "12.345.678,90", "2026-02-30", "9999-99-99", "0000-00-00", "2026-13", "31/02/2026", "10000-01-01",
    "\x00", "%00", "a\x00b", "\ud7ff", "é" * 300, "x" * 5000, "../../etc/passwd", "<script>alert(1)</script>",
    "=HYPERLINK(\"http://x\")", "' OR 1=1 --", "mallory@example.org,eve", "a@b", "@", "ÉLISE@exämple.fr",
    "javascript:alert(1)", "//evil.example/", "http://evil.example/", "\r\nSet-Cookie: x=1", "[]", "{}", "null", "true",
    "eur", "XXX", "€", "-50", "50,001", "0,00",
]
HOSTILE = st.one_of(st.sampled_from(CORPUS), st.text(max_size=30), st.integers().map(str),
                    st.decimals(allow_nan=True, allow_infinity=True).map(str), st.dates().map(str))
ROLES = ("anonymous", "member", "staff", "admin", "accountant")


@dataclass
class Target:
    path: str
    methods: tuple[str, ...]
    params: tuple[str, ...]


@dataclass
class Fuzz:
    client: TestClient
    sessions: object
    portal: object
    targets: list[Target]
    values: dict[str, list[str]]
    cookies: dict[str, dict[str, str]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


def targets_of(routes, prefix: str = "") -> list[Target]:
    out = []
    for route in routes:
        if isinstance(route, Mount):
            if route.routes is not None and not route.path.startswith(("/static", "/sandbox", "/v1")):
                out += targets_of(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            methods = tuple(m for m in (route.methods or {"GET"}) if m in ("GET", "POST"))
            # /readyz answers 503 when the process is not ready (no worker in the tests): that is its answer.
            if prefix + route.path in ("/dev/mailbox", "/readyz") or not methods:
                continue
            out.append(Target(prefix + route.path, methods, tuple(route.param_convertors)))
    return out


async def _counts(sessions) -> dict[str, int]:
    from funding.models import metadata

    async with sessions() as session:
        return {t.name: int(await session.scalar(select(func.count()).select_from(t))) for t in metadata.sorted_tables}


@pytest.fixture
def fuzz(settings):
    from funding.app import create_app
    from tests.support.campaigns import make_campaign
    from tests.support.world import make_world

    app = create_app(settings)
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        sessions = app.state.sessions
        world = client.portal.call(make_world, sessions)
        campaign = client.portal.call(lambda: make_campaign(
            sessions, world, tiers=[{"amount": 2500, "title": "Merci"}, {"amount": 5000, "kind": "reward", "value": 1000,
                                                                           "stock": 3, "vat": 200}]))
        values = {"siren": [world.siren], "slug": [campaign.slug, world.site_slug], "site": [world.site_slug],
                  "token": ["abc"], "what": ["pdf", "facturx"]}
        fz = Fuzz(client, sessions, client.portal, targets_of(app.routes), values)
        for role in ROLES:
            client.cookies.clear()
            if role != "anonymous":
                async def link(role=role):
                    async with transaction(sessions) as session:
                        return await issue_link(session, await session.get(User, world.users[role]), settings)
                path = client.portal.call(link).replace(settings.base_url, "")
                page = client.get(path)
                assert client.post(path, data={"csrf_token": _token(page.text)}).status_code == 303
            fz.tokens[role] = _token(client.get("/login" if role == "anonymous" else "/admin/ledger/closings"
                                                if role in ("staff", "admin") else "/").text) or ""
            fz.cookies[role] = dict(client.cookies)
        yield fz


def _token(html: str) -> str | None:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    return match.group(1) if match else None


def path_value(fz: Fuzz, name: str):
    return st.one_of(st.sampled_from(fz.values.get(name, ["1"])), HOSTILE.filter(lambda v: "/" not in v and v not in (".", "..")))


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_no_input_answers_a_server_error(fuzz, data):
    fz = fuzz
    target = data.draw(st.sampled_from(fz.targets), label="route")
    role = data.draw(st.sampled_from(ROLES), label="role")
    method = data.draw(st.sampled_from(target.methods), label="method")
    path = target.path
    for name in target.params:
        value = data.draw(path_value(fz, name), label=name)
        path = re.sub(r"\{" + name + r"(:[a-z]+)?\}", lambda _m, v=value: _quote(v), path)
    fields = data.draw(st.dictionaries(st.sampled_from(FIELDS), HOSTILE, max_size=6), label="fields")
    fz.client.cookies.clear()
    for k, v in fz.cookies[role].items():
        fz.client.cookies.set(k, v)
    if method == "GET":
        response = fz.client.get(path, params=fields)
    else:
        if data.draw(st.booleans(), label="with csrf"):
            fields["csrf_token"] = fz.tokens[role]
        before = fz.portal.call(_counts, fz.sessions)
        response = fz.client.post(path, data=fields)
        if 400 <= response.status_code < 500:
            after = fz.portal.call(_counts, fz.sessions)
            changed = {t: (before[t], after[t]) for t in before if before[t] != after[t] and t not in QUIET}
            assert not changed, f"{method} {path} {fields} refused ({response.status_code}) but changed {changed}"
    assert response.status_code < 500, f"{method} {path} as {role} with {fields!r}: {response.status_code}"
    assert "Traceback" not in response.text


# Tables a refused request may still write: the rate limits' own counters, the session store.
QUIET = {"rate_limits", "user_sessions"}


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


@pytest.mark.parametrize("signature", ["t=1,v1=é", "t=①,v1=abc", "\u00ff" * 10, "t=99999999999999999999999,v1=00"])
def test_a_hostile_stripe_signature_is_refused_not_a_crash(fuzz, signature):
    response = fuzz.client.post("/webhooks/stripe", content=b'{"id": "evt_1", "type": "charge.captured"}',
                                headers={"Stripe-Signature": signature.encode("utf-8"), "Content-Type": "application/json"})
    assert response.status_code == 400


SWEEP = ["²", "-1", "9" * 30, "1e309", "NaN", "2026-02-30", "\x00", "x" * 200, "mallory@example.org,eve", "é", " ",
         "=1+1", "//evil.example/", "[]"]


@pytest.mark.parametrize("role", ["anonymous", "admin"])
def test_every_route_with_every_field_set_to_each_hostile_value(fuzz, role):
    """Deterministic sweep beside Hypothesis: each route, each hostile value in every field the code reads at once."""
    failures = []
    for target in fuzz.targets:
        path = target.path
        for name in target.params:
            path = re.sub(r"\{" + name + r"(:[a-z]+)?\}", fuzz.values.get(name, ["1"])[0], path)
        for value in SWEEP:
            fields = dict.fromkeys(FIELDS, value)
            fuzz.client.cookies.clear()
            for k, v in fuzz.cookies[role].items():
                fuzz.client.cookies.set(k, v)
            for method in target.methods:
                data = {**fields, "csrf_token": fuzz.tokens[role]}
                response = fuzz.client.get(path, params=fields) if method == "GET" else fuzz.client.post(path, data=data)
                if response.status_code >= 500:
                    failures.append(f"{method} {path} {value[:20]!r}: {response.status_code}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("how", ["query", "form", "json", "path"])
def test_a_nul_character_is_refused_before_any_handler(fuzz, how):
    """Observed on PostgreSQL: a NUL in a site's slug or a campaign's title was a database error (500)."""
    client = fuzz.client
    for k, v in fuzz.cookies["admin"].items():
        client.cookies.set(k, v)
    if how == "query":
        response = client.get("/open-data/funding-mix.csv", params={"site": "a\x00b"})
    elif how == "form":
        response = client.post("/admin/campagnes/nouvelle", data={"csrf_token": fuzz.tokens["admin"], "title": "x\x00"})
    elif how == "json":
        response = client.post("/api/campagnes", content=b'{"title": "a\\u0000"}', headers={"content-type": "application/json"})
    else:
        response = client.get("/campagnes/a%00b")
    assert response.status_code == 400


CONTROL_REFUSED = "Caractère de contrôle refusé"


@pytest.mark.parametrize("how", ["query", "form", "multipart field", "json", "path"])
@pytest.mark.parametrize("char", ["\x01", "\x07", "\x1b", "\x1f", "\x0b"])
def test_a_control_character_is_refused_before_any_handler_with_a_clear_page(fuzz, how, char):
    """NUL's siblings (C0 controls but tab, LF and CR) are refused at the edge too, with a 400
    page that says why; a multipart form's fields are checked, its files are left to their reader."""
    client = fuzz.client
    client.cookies.clear()
    for k, v in fuzz.cookies["admin"].items():
        client.cookies.set(k, v)
    before = fuzz.portal.call(_counts, fuzz.sessions)
    if how == "query":
        response = client.get("/campagnes", params={"q": f"a{char}b"})
    elif how == "form":
        response = client.post("/admin/campaigns/new", data={"csrf_token": fuzz.tokens["admin"], "title": f"x{char}"})
    elif how == "multipart field":
        response = client.post(f"/bar/{fuzz.values['site'][0]}/produits", data={"csrf_token": fuzz.tokens["admin"],
                               "name": f"Caf{char}é", "price": "1", "vat_rate": "10"},
                               files={"file": ("", b"", "application/octet-stream")})
    elif how == "json":
        escaped = f"\\u{ord(char):04x}"
        response = client.post("/api/campagnes", content=('{"title": "a' + escaped + '"}').encode(),
                               headers={"content-type": "application/json"})
    else:
        response = client.get("/campagnes/a%" + f"{ord(char):02X}" + "b")
    assert response.status_code == 400
    assert CONTROL_REFUSED in response.text
    assert "Traceback" not in response.text
    assert fuzz.portal.call(_counts, fuzz.sessions) == before


def test_tab_line_feed_and_carriage_return_are_text(fuzz):
    client = fuzz.client
    client.cookies.clear()
    response = client.get("/campagnes", params={"q": "a\tb\r\nc"})
    assert response.status_code == 200 and CONTROL_REFUSED not in response.text


def test_the_refusal_speaks_english_to_an_english_browser(fuzz):
    fuzz.client.cookies.clear()
    response = fuzz.client.get("/campagnes", params={"q": "\x07"}, headers={"accept-language": "en"})
    assert response.status_code == 400 and "Control character refused" in response.text


MEMBER_IDS = [str(2**64), str(2**63), str(-(2**63) - 1), "-1", "0", "9" * 40, "٣", "²", "1e3", "0x10", " 1", "1.0",
              "x" * 5000, "", "NaN"]


@pytest.mark.parametrize("role", ["staff", "admin", "member", "anonymous"])
def test_the_till_refuses_crafted_member_and_product_ids_without_a_server_error(fuzz, role):
    """Observed: member_id beyond 64 bits answered 500 at the till. Every crafted id, in every
    form field and query parameter of the till, answers below 500 and a refusal writes nothing."""
    client = fuzz.client
    site = fuzz.values["site"][0]
    failures = []
    for value in MEMBER_IDS:
        client.cookies.clear()
        for k, v in fuzz.cookies[role].items():
            client.cookies.set(k, v)
        for params in ({"membre": value}, {"comptoir": value}, {"q": value}):
            response = client.get(f"/bar/{site}/caisse", params=params)
            if response.status_code >= 500:
                failures.append(f"GET caisse {value[:20]!r}: {response.status_code}")
        for path, fields in ((f"/bar/{site}/caisse/vente", {"member_id": value, "product_id": "1", "quantity": "1"}),
                             (f"/bar/{site}/caisse/vente", {"ticket_id": value, "product_id": value, "quantity": value}),
                             (f"/bar/{site}/caisse/annulation", {"member_id": value, "line_id": value, "reason": "x"}),
                             (f"/bar/{site}/comptoir", {"member_id": value}),
                             (f"/bar/{site}/produits", {"product_id": value, "name": "x", "price": value, "vat_rate": "10"})):
            before = fuzz.portal.call(_counts, fuzz.sessions)
            for accept in ("text/html", "application/json"):
                response = client.post(path, data={**fields, "csrf_token": fuzz.tokens[role]}, headers={"accept": accept})
                if response.status_code >= 500 or "Traceback" in response.text:
                    failures.append(f"POST {path} {value[:20]!r} ({accept}): {response.status_code}")
                if 400 <= response.status_code < 500:
                    after = fuzz.portal.call(_counts, fuzz.sessions)
                    changed = {t: (before[t], after[t]) for t in before if before[t] != after[t] and t not in QUIET}
                    if changed:
                        failures.append(f"POST {path} {value[:20]!r}: refused but changed {changed}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("currency", ["ABC", "XXX", "XTS", "FRF", "€", "EURO", "E\u0301U", "", "ＥＵＲ", "eur "])
def test_a_made_up_currency_is_refused_by_the_campaign_form(fuzz, currency):
    """A code outside ISO 4217's active list never enters (money.check_currency, used by every
    form, the CLI, the CSV imports and the ledger); "eur " is EUR, and so is an empty field."""
    from funding.money import MoneyError, check_currency

    client = fuzz.client
    client.cookies.clear()
    for k, v in fuzz.cookies["admin"].items():
        client.cookies.set(k, v)
    before = fuzz.portal.call(_counts, fuzz.sessions)
    response = client.post("/admin/campaigns/new", data={
        "csrf_token": fuzz.tokens["admin"], "site": fuzz.values["site"][0], "slug": "devise", "title": "Devise",
        "summary": "s", "description": "d", "image_url": "", "goal": "6 000", "currency": currency, "mode": "keep_it_all",
        "starts_at": "2026-01-05T09:00", "ends_at": "2026-02-15T20:00", "min_amount": "", "max_amount": "", "free_amount": "1"})
    if currency in ("eur ", ""):  # the form's default is EUR
        assert response.status_code == 303
        return
    with pytest.raises(MoneyError, match="devise inconnue"):
        check_currency(currency)
    assert response.status_code == 400 and "devise inconnue" in response.text
    after = fuzz.portal.call(_counts, fuzz.sessions)
    assert {t: after[t] for t in after if t not in QUIET} == {t: before[t] for t in before if t not in QUIET}
