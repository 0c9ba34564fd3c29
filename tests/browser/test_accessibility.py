"""Issue 17: accessibility. Every page of the seeded demo, as each persona sees it (anonymous, member,
staff, admin, accountant), on a desktop (1280 px) and a phone (360 px): axe-core (WCAG 2.1 A and
AA rules, shipped in tests/browser/vendor with its licence) finds no violation, and no page is
wider than the screen."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.demo_pages import PERSONAS, crawl, logged_in, seed_demo

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
SCREENS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 360, "height": 740}}
RUN = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return result.violations.map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ')}`);
}"""


def pages_of(server, email) -> list[str]:
    with httpx.Client(base_url=server.url, follow_redirects=True, timeout=30) as client:
        logged_in(server, email, client)
        return [path for path, response in crawl(client, PERSONAS_STARTS[email]) if response.status_code == 200]


PERSONAS_STARTS = {email: starts for email, starts in PERSONAS.values()}


def browser_login(server, context, email) -> None:
    if email is None:
        return
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as client:
        logged_in(server, email, client)
        context.add_cookies([{"name": c.name, "value": c.value, "url": server.url} for c in client.cookies.jar])


@pytest.mark.parametrize("screen", list(SCREENS))
def test_every_page_of_the_demo_passes_axe_and_fits_the_screen(live_server, live_settings, browser, screen):
    live_server.settings = live_settings
    seed_demo(live_server.settings)
    problems: list[str] = []
    visited = 0
    for persona, (email, _starts) in PERSONAS.items():
        paths = pages_of(live_server, email)
        context = browser.new_context(viewport=SCREENS[screen], locale="fr-FR", bypass_csp=True,
                                      is_mobile=screen == "phone", has_touch=screen == "phone")
        browser_login(live_server, context, email)
        page = context.new_page()
        page.set_default_timeout(20_000)
        for path in paths:
            page.goto(live_server.url + path)
            visited += 1
            page.add_script_tag(content=AXE)
            for violation in page.evaluate(RUN, TAGS):
                problems.append(f"{screen} {persona} {path}: {violation}")
            wide = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            if wide[0] > wide[1]:
                problems.append(f"{screen} {persona} {path}: {wide[0]} px wide on a {wide[1]} px screen")
        context.close()
    assert visited >= 40, visited
    assert problems == [], f"{len(problems)} problems:\n" + "\n".join(problems)
