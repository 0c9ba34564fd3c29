"""An accountant opens the funding-mix report in a real browser: the server-drawn chart is
there with the right proportions, and the figures on the page are those of the CSV."""

from __future__ import annotations

import csv
import io
import re

import pytest

from funding.auth.models import User
from funding.auth.service import issue_link
from funding.db import create_engine, transaction
from tests.support.db import run_async, sealed_sessions
from tests.support.exports import seed_money
from tests.support.world import make_world

pytestmark = pytest.mark.browser


def _accountant_link(database_url: str, settings) -> str:
    async def build():
        engine = create_engine(database_url)
        sessions = sealed_sessions(engine)
        try:
            world = await make_world(sessions)
            await seed_money(sessions, world)
            async with transaction(sessions) as session:
                return await issue_link(session, await session.get(User, world.users["accountant"]), settings,
                                        next_path="/admin/reports/funding-mix")
        finally:
            await engine.dispose()

    return run_async(build)  # Playwright's sync API keeps a loop running in this thread


def _plain(text: str) -> str:
    """1 234,56 € → 1234,56 (the CSV's notation)."""
    return re.sub(r"[\s\u00a0\u202f€%]", "", text)


def test_the_funding_mix_chart_is_drawn_and_matches_the_csv(live_server, live_settings, phone):
    page = phone
    page.goto(_accountant_link(live_settings.database_url, live_settings))
    page.get_by_role("button", name="Me connecter").click()
    page.wait_for_url(re.compile(r".*/admin/reports/funding-mix$"))

    chart = page.locator("svg#mix-bar")
    assert chart.get_attribute("role") == "img"
    assert "Subventions publiques" in page.locator("#mix-bar-desc").text_content()
    svg_box = chart.bounding_box()
    assert svg_box["width"] > 300 and svg_box["height"] > 20
    total = int(chart.get_attribute("data-total"))
    segments = page.locator("svg#mix-bar rect.seg")
    assert segments.count() == 4
    drawn = 0
    for i in range(segments.count()):
        rect = segments.nth(i)
        box = rect.bounding_box()
        amount = int(rect.get_attribute("data-amount"))
        # On screen, each segment's width is its share of the bar (to a pixel), and it is filled.
        assert abs(box["width"] - svg_box["width"] * amount / total) <= 1.5, (rect.get_attribute("data-source"), box)
        assert rect.evaluate("r => getComputedStyle(r).fill") not in ("none", "rgb(0, 0, 0)")
        drawn += box["width"]
    assert abs(drawn - svg_box["width"]) <= 1
    months = page.locator("svg#mix-trend g.month")
    assert months.count() == 12
    last = months.last.locator("rect.seg")
    assert last.count() == 4 and all(last.nth(i).bounding_box()["height"] > 0 for i in (0, 1))

    response = page.request.get(live_server.url + "/admin/reports/funding-mix.csv")
    assert response.ok
    rows = [r for r in csv.DictReader(io.StringIO(response.body().decode("utf-8-sig")), delimiter=";") if r["section"] == "origine"]
    assert len(rows) == 4
    for row in rows:
        cells = page.locator(f"#mix-sources tr[data-source='{row['origine']}'] td")
        assert _plain(cells.nth(0).inner_text()) == row["montant"]
        assert _plain(cells.nth(1).inner_text()) == row["part"]
        assert int(page.locator(f"svg#mix-bar rect[data-source='{row['origine']}']").get_attribute("data-amount")) == \
            int(row["montant"].replace(",", ""))
    assert _plain(page.locator("#mix-total").inner_text()) == "38670,00"
    assert page.evaluate("document.documentElement.scrollWidth > window.innerWidth") is False
