"""Campaigns that travel: an uploaded image (checked, resized, stripped, stored locally or in an
S3-compatible bucket), link previews (Open Graph, Twitter), share links without trackers, a call
to action by the progress bar, cards with time left and backers, news to the backers who agreed,
and a reminder 48 hours before an all-or-nothing deadline (observed: none of it existed)."""

from __future__ import annotations

import datetime as dt
import io
import re
from urllib.parse import unquote

import httpx
import pytest
import respx
from PIL import Image
from sqlalchemy import select

from funding import media
from funding.campaigns import news
from funding.campaigns.models import Campaign, CampaignReminder, CampaignUpdate
from funding.db import transaction, utcnow
from funding.mail.models import Email
from tests.support.campaigns import make_campaign, paid_pledge, pledge
from tests.support.web import csrf_of, login_as


def _photo(size=(2000, 1500), fmt="PNG", orientation: int | None = None, color=(200, 30, 30)) -> bytes:
    image = Image.new("RGB", size, color)
    out = io.BytesIO()
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation  # Orientation
        exif[0x8825] = {2: (45.0, 51.0, 0.0)}  # a GPS position the upload must not keep
        image.save(out, fmt, exif=exif)
    else:
        image.save(out, fmt)
    return out.getvalue()


def test_an_image_is_reframed_for_link_previews_and_loses_its_metadata():
    kept = media.prepare(_photo((1000, 2000), fmt="JPEG", orientation=6))
    with Image.open(io.BytesIO(kept)) as image:
        assert image.format == "JPEG" and image.size == media.FRAME
        assert not image.getexif()  # no orientation, no GPS, nothing
    assert media.name_for(kept).startswith("campaigns/") and media.name_for(kept).endswith(".jpg")


@pytest.mark.parametrize(("data", "message"), [
    (b"", "vide"),
    (b"GIF89a not really", "lisible"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "lisible"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "lisible"),
])
def test_what_is_not_a_photo_is_refused_with_a_reason(data, message):
    with pytest.raises(media.ImageError, match=message):
        media.prepare(data)


def test_a_gif_a_bomb_and_a_huge_file_are_refused(monkeypatch):
    gif = io.BytesIO()
    Image.new("RGB", (10, 10)).save(gif, "GIF")
    with pytest.raises(media.ImageError, match="JPEG, PNG ou WebP"):
        media.prepare(gif.getvalue())
    monkeypatch.setattr(media, "MAX_PIXELS", 100 * 100)  # the check reads the header, before decoding
    with pytest.raises(media.ImageError, match="trop grande"):
        media.prepare(_photo((101, 100)))
    monkeypatch.setattr(media, "MAX_UPLOAD", 1000)
    with pytest.raises(media.ImageError, match="8 Mo"):
        media.prepare(b"x" * 1001)


def test_s3_requests_are_signed_as_aws_signature_version_4_says():
    # The GET Object example of AWS's documentation (Signature Version 4, header-based auth).
    headers = media.sigv4_headers(
        "GET", "https://examplebucket.s3.amazonaws.com/test.txt", {"Range": "bytes=0-9"}, b"",
        access_key="AKIAIOSFODNN7EXAMPLE", secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region="us-east-1",
        now=dt.datetime(2013, 5, 24, tzinfo=dt.UTC))
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


async def test_with_a_bucket_configured_images_go_to_object_storage(database_url, tmp_path):
    from funding.settings import ConfigError, load_settings

    settings = load_settings({}, FUNDING_ENV="test", DATABASE_URL=database_url, SECRET_KEY="s" * 30,
                             S3_BUCKET="entrelab", S3_ENDPOINT_URL="https://s3.fr-par.scw.cloud", S3_ACCESS_KEY_ID="SCWKEY",
                             S3_SECRET_ACCESS_KEY="secret", S3_PUBLIC_URL="https://entrelab.s3.fr-par.scw.cloud")
    with respx.mock(assert_all_called=True) as stripe_free:
        route = stripe_free.put(url__regex=r"https://s3\.fr-par\.scw\.cloud/entrelab/campaigns/[0-9a-f]{32}\.jpg").mock(
            return_value=httpx.Response(200))
        url = await media.store_image(settings, _photo())
    sent = route.calls.last.request
    assert sent.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=SCWKEY/")
    assert "/fr-par/s3/aws4_request" in sent.headers["Authorization"]
    assert sent.headers["Content-Type"] == "image/jpeg"
    assert re.fullmatch(r"https://entrelab\.s3\.fr-par\.scw\.cloud/campaigns/[0-9a-f]{32}\.jpg", url)
    with respx.mock() as refusing:
        refusing.put(url__regex=r"https://s3\.fr-par\.scw\.cloud/.*").mock(return_value=httpx.Response(403))
        with pytest.raises(media.ImageError, match="403"):
            await media.store_image(settings, _photo())
    with pytest.raises(ConfigError, match="S3_ACCESS_KEY_ID"):
        load_settings({}, FUNDING_ENV="test", DATABASE_URL=database_url, SECRET_KEY="s" * 30, S3_BUCKET="entrelab",
                      S3_ENDPOINT_URL="https://s3.fr-par.scw.cloud")


async def test_staff_upload_a_photo_and_the_page_previews_with_it(client, sessions, world, settings):
    campaign = await make_campaign(sessions, world, slug="four-a-pain", status="draft")
    await login_as(client, sessions, settings, world.users["staff"])
    form = await client.get("/admin/campaigns/four-a-pain/edit")
    assert 'enctype="multipart/form-data"' in form.text and 'type="file"' in form.text
    async with sessions() as session:
        from funding.campaigns.service import form_of
        from funding.orgs.models import Site

        as_typed = form_of(await session.get(Campaign, campaign.id), (await session.get(Site, campaign.site_id)).slug)
    fields = {**{k: str(v) for k, v in vars(as_typed).items() if k != "free_amount"}, "free_amount": "1",
              "csrf_token": csrf_of(form.text), "title": "Un four à pain", "summary": "Du pain au village"}
    bad = await client.post("/admin/campaigns/four-a-pain/edit", data=fields,
                            files={"image_file": ("x.png", b"not an image", "image/png")})
    assert bad.status_code == 400 and "lisible" in bad.text
    async with sessions() as session:
        assert (await session.get(Campaign, campaign.id)).image_url is None  # nothing changed

    saved = await client.post("/admin/campaigns/four-a-pain/edit", data=fields,
                              files={"image_file": ("four.jpg", _photo(fmt="JPEG", orientation=3), "image/jpeg")})
    assert saved.status_code in (302, 303), re.findall(r'class="[^"]*error[^"]*"[^>]*>([^<]*)', saved.text)
    async with sessions() as session:
        url = (await session.get(Campaign, campaign.id)).image_url
    assert re.fullmatch(r"/media/campaigns/[0-9a-f]{32}\.jpg", url)
    served = await client.get(url)
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(served.content)).size == media.FRAME

    async with transaction(sessions) as session:
        (await session.get(Campaign, campaign.id)).status = "live"
    client.cookies.clear()
    page = (await client.get("/campagnes/four-a-pain")).text
    assert f'<meta property="og:image" content="http://testserver{url}">' in page
    assert '<meta name="twitter:card" content="summary_large_image">' in page
    assert '<meta property="og:url" content="http://testserver/campagnes/four-a-pain">' in page
    assert '<meta property="og:title" content="Un four à pain">' in page


async def test_share_links_carry_no_tracker_and_the_call_to_action_sits_by_the_progress(client, sessions, world):
    await make_campaign(sessions, world, slug="laser")
    page = (await client.get("/campagnes/laser")).text
    share = re.search(r'<nav class="cf-share".*?</nav>', page, re.S).group(0)
    links = re.findall(r'href="([^"]+)"', share)
    assert len(links) == 5 and any(link.startswith("mailto:") for link in links)
    assert all("http://testserver/campagnes/laser" in unquote(link) for link in links)
    assert not any(word in share for word in ("utm_", "<script", "<iframe"))
    assert not re.search(r'<script[^>]+src="https?://', page)  # no third-party script anywhere
    status = re.search(r'<section class="card cf-status".*?</section>', page, re.S).group(0)
    assert 'id="cta-contribute"' in status and 'href="#contribuer"' in status
    assert 'class="cf-sticky"' in page


async def test_cards_say_how_many_backed_and_how_long_is_left(client, sessions, world):
    campaign = await make_campaign(sessions, world, slug="laser", days_left=10)
    await make_campaign(sessions, world, slug="vide", days_left=3)
    await paid_pledge(sessions, campaign.id, email="a@example.org")
    await paid_pledge(sessions, campaign.id, email="b@example.org")
    page = (await client.get("/campagnes")).text
    cards = page.split('<li class="card cf-card">')[1:]
    laser = next(card for card in cards if "/campagnes/laser" in card)
    empty = next(card for card in cards if "/campagnes/vide" in card)
    assert "2 contributeurs" in laser, laser and re.search(r"Plus que (9|10) jours", laser)
    assert "Aucun contributeur encore" in empty and re.search(r"Plus que [23] jours", empty)


async def test_news_is_shown_and_emailed_once_to_each_backer_who_agreed(client, sessions, world, settings):
    campaign = await make_campaign(sessions, world, slug="laser")
    await paid_pledge(sessions, campaign.id, email="oui@example.org", wants_updates=True)
    await paid_pledge(sessions, campaign.id, email="oui@example.org", wants_updates=True)  # twice: one email
    await paid_pledge(sessions, campaign.id, email="non@example.org")
    await pledge(sessions, campaign.id, email="abandon@example.org", wants_updates=True)  # checkout never paid
    await login_as(client, sessions, settings, world.users["staff"])
    admin = await client.get("/admin/campaigns/laser")
    assert "1 contributeur qui a demandé les nouvelles" in admin.text
    empty = await client.post("/admin/campaigns/laser/nouvelles", data={"csrf_token": csrf_of(admin.text), "title": "",
                                                                       "body": "x"}, follow_redirects=True)
    assert "Donnez un titre" in empty.text
    done = await client.post("/admin/campaigns/laser/nouvelles", data={
        "csrf_token": csrf_of(admin.text), "title": "La découpeuse est arrivée", "body": "Premiers essais **samedi**."},
        follow_redirects=True)
    assert "envoyée à 1 contributeur" in done.text
    async with sessions() as session:
        emails = (await session.scalars(select(Email).where(Email.dedupe_key.like("campaign-update:%")))).all()
        (update,) = (await session.scalars(select(CampaignUpdate))).all()
    assert [e.to_addr for e in emails] == ["oui@example.org"] and update.recipients == 1
    assert "Premiers essais" in emails[0].body_text and "/campagnes/laser#nouvelles" in emails[0].body_text
    client.cookies.clear()
    page = (await client.get("/campagnes/laser")).text
    assert "La découpeuse est arrivée" in page and "<strong>samedi</strong>" in page


async def test_a_backer_opts_in_to_news_on_the_contribution_form(client, sessions, world):
    await make_campaign(sessions, world, slug="laser")
    page = (await client.get("/campagnes/laser")).text
    assert re.search(r'<input type="checkbox" name="news" value="1"', page)


async def test_news_cannot_go_out_for_a_draft(sessions, world, settings):
    draft = await make_campaign(sessions, world, slug="brouillon", status="draft")
    async with transaction(sessions) as session:
        with pytest.raises(news.NewsError):
            await news.publish_update(session, settings, await session.get(Campaign, draft.id), title="t", body="b",
                                      author="x@example.org")


async def test_a_visitor_is_reminded_once_48_hours_before_an_all_or_nothing_deadline(client, sessions, world, settings):
    campaign = await make_campaign(sessions, world, slug="tout", mode="all_or_nothing", days_left=10)
    await make_campaign(sessions, world, slug="acquis", mode="keep_it_all", days_left=10)
    assert 'id="remind-me"' not in (await client.get("/campagnes/acquis")).text  # keep-it-all: no deadline to miss
    page = await client.get("/campagnes/tout")
    assert 'id="remind-me"' in page.text
    for address in ("Lea@Example.org", "lea@example.org"):
        asked = await client.post("/campagnes/tout/rappel", data={"csrf_token": csrf_of(page.text), "email": address})
        assert asked.status_code in (302, 303) and asked.headers["location"].endswith("?rappel=1#rappel")
    bad = await client.post("/campagnes/tout/rappel", data={"csrf_token": csrf_of(page.text), "email": "a@b,c@d"})
    assert bad.status_code == 400
    async with sessions() as session:
        reminders = (await session.scalars(select(CampaignReminder))).all()
    assert [r.email for r in reminders] == ["lea@example.org"]

    ends = campaign.ends_at
    assert await news.send_reminders(sessions, settings, now=ends - dt.timedelta(hours=49)) == 0  # too early
    assert await news.send_reminders(sessions, settings, now=ends - dt.timedelta(hours=47)) == 1
    assert await news.send_reminders(sessions, settings, now=ends - dt.timedelta(hours=20)) == 0  # once
    async with sessions() as session:
        (email,) = (await session.scalars(select(Email).where(Email.dedupe_key.like("campaign-reminder:%")))).all()
    assert email.to_addr == "lea@example.org" and "/campagnes/tout#contribuer" in email.body_text


async def test_no_reminder_is_taken_within_the_last_48_hours(sessions, world):
    campaign = await make_campaign(sessions, world, slug="tout", mode="all_or_nothing", days_left=1)
    async with transaction(sessions) as session:
        with pytest.raises(news.NewsError, match="48 heures"):
            await news.ask_reminder(session, await session.get(Campaign, campaign.id), "a@example.org", "fr", now=utcnow())
