"""Public pages for a crowd (funding/public.py): anonymous visitors get answers a CDN may keep,
revalidated by ETag, and never a cookie; their forms still work; anyone with a session is
answered privately as before; the security headers stay."""

from __future__ import annotations

from sqlalchemy import update

from funding.campaigns.models import Campaign
from funding.public import Answers, anonymous_token
from tests.support.campaigns import make_campaign
from tests.support.web import csrf_of, login_as


async def public_paths(sessions, world) -> list[str]:
    campaign = await make_campaign(sessions, world, tiers=[{"amount": 2000}])
    return ["/campagnes", f"/campagnes/{campaign.slug}", f"/widget/campaigns/{campaign.slug}", "/api/campaigns",
            f"/api/campaigns/{campaign.slug}"]


async def test_anonymous_visitors_get_cacheable_answers_without_a_cookie(client, sessions, world):
    for path in await public_paths(sessions, world):
        for url in (path, path + "?lang=en"):
            response = await client.get(url)
            assert response.status_code == 200, url
            assert "set-cookie" not in response.headers, url
            control = response.headers["cache-control"]
            assert control.startswith("public") and "max-age=" in control and "s-maxage=" in control, (url, control)
            assert response.headers["etag"].startswith('"') and response.headers["last-modified"].endswith("GMT")
            assert "Cookie" in response.headers["vary"]
            # the security headers of every answer stay (README, Security)
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "same-origin"
            assert "script-src 'self'" in response.headers["content-security-policy"]
            if path.startswith("/widget/"):
                assert "frame-ancestors *" in response.headers["content-security-policy"]
                assert "x-frame-options" not in response.headers
            else:
                assert response.headers["x-frame-options"] == "DENY"
        assert not client.cookies, path


async def test_an_unchanged_answer_is_revalidated_with_304_and_a_changed_one_is_not(client, sessions, world):
    paths = await public_paths(sessions, world)
    for path in paths:
        first = await client.get(path)
        etag = first.headers["etag"]
        again = await client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"", path
        assert again.headers["etag"] == etag and "set-cookie" not in again.headers
        assert again.headers["cache-control"].startswith("public")
        other = await client.get(path, headers={"If-None-Match": '"something-else"'})
        assert other.status_code == 200 and other.content == first.content
    async with sessions() as session, session.begin():
        await session.execute(update(Campaign).values(title="Un autre titre"))
    page = paths[1]
    before = (await client.get(page)).headers["etag"]
    async with sessions() as session, session.begin():
        await session.execute(update(Campaign).values(title="Encore un autre titre"))
    changed = await client.get(page, headers={"If-None-Match": before})
    assert changed.status_code == 200 and "Encore un autre titre" in changed.text


async def test_the_form_of_a_public_page_works_without_a_session(client, sessions, world):
    campaign = await make_campaign(sessions, world, tiers=[{"amount": 2000}])
    page = await client.get(f"/campagnes/{campaign.slug}")
    assert "set-cookie" not in page.headers
    base = {"csrf_token": csrf_of(page.text), "currency": "EUR", "name": "Léa Vidal", "email": "lea", "tier": "",
            "amount": "20", "street": "3 rue Durolle", "postcode": "63300", "town": "Thiers", "country": "France"}
    response = await client.post(f"/campagnes/{campaign.slug}/contribuer", data=base)
    assert response.status_code == 400 and "e-mail invalide" in response.text  # past the CSRF check, to the form's own
    forged = anonymous_token("another-installation-key-0123")
    refused = await client.post(f"/campagnes/{campaign.slug}/contribuer", data={**base, "csrf_token": forged})
    assert refused.status_code == 403


async def test_a_logged_in_person_is_answered_privately_and_needs_the_session_token(client, sessions, world, settings):
    campaign = await make_campaign(sessions, world, tiers=[{"amount": 2000}])
    anonymous = csrf_of((await client.get(f"/campagnes/{campaign.slug}")).text)
    await login_as(client, sessions, settings, world.users["staff"])
    page = await client.get(f"/campagnes/{campaign.slug}")
    assert page.headers["cache-control"] == "no-store" and "etag" not in page.headers
    own = csrf_of(page.text)
    assert own != anonymous
    # A public page's anonymous token carries no one's authority: refused for a logged-in person.
    data = {"currency": "EUR", "name": "Léa", "email": "lea", "tier": "", "amount": "20"}
    assert (await client.post(f"/campagnes/{campaign.slug}/contribuer", data={**data, "csrf_token": anonymous})).status_code == 403
    assert (await client.post(f"/campagnes/{campaign.slug}/contribuer", data={**data, "csrf_token": own})).status_code == 400


async def test_a_process_serves_a_burst_from_one_rendering(app, client, sessions, world):
    paths = await public_paths(sessions, world)
    app.state.public_answers = Answers(60)  # what a deployment keeps for PROCESS_SECONDS (off in tests)
    first = {path: (await client.get(path)).content for path in paths}
    async with sessions() as session, session.begin():
        await session.execute(update(Campaign).values(title="Changé entre-temps"))
    for path in paths:
        again = await client.get(path)
        assert again.status_code == 200 and again.content == first[path], path  # kept: not rendered again
        assert "set-cookie" not in again.headers
    await client.get(paths[0], params={"lang": "en"})
    assert "Changé entre-temps" in (await client.get(paths[1], params={"lang": "en"})).text  # another key: rendered now


async def test_the_anonymous_token_opens_only_the_public_pages_forms(client, sessions, world, settings):
    from funding.auth.models import User
    from funding.auth.service import issue_link
    from funding.db import transaction

    campaign = await make_campaign(sessions, world, tiers=[{"amount": 2000}])
    token = csrf_of((await client.get(f"/campagnes/{campaign.slug}")).text)
    async with transaction(sessions) as session:
        link = await issue_link(session, await session.get(User, world.users["staff"]), settings)
    # A forged form must not log a visitor into someone else's account (login CSRF).
    login = await client.post(link.replace(settings.base_url, ""), data={"csrf_token": token})
    assert login.status_code == 403 and not client.cookies
