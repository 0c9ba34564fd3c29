"""Browser tests: Debian's chromium driven by Playwright against a live server."""

from __future__ import annotations

import os
import shutil

import pytest

from funding.settings import load_settings
from tests.support.db import TEST_SEAL_KEY, skip_or_fail
from tests.support.live import LiveServer, free_port

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def live_settings(database_url):
    port = free_port()
    return load_settings({}, FUNDING_ENV="test", LEDGER_SEAL_KEY=TEST_SEAL_KEY, DATABASE_URL=database_url, SECRET_KEY="browser-secret-0123456789",
                         BASE_URL=f"http://127.0.0.1:{port}")


@pytest.fixture
def live_server(live_settings):
    from tests.support.e2e import served

    with LiveServer(served(live_settings), int(live_settings.base_url.rsplit(":", 1)[1])) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    """Module-scoped: Playwright's sync API keeps an event loop running in this thread,
    which must be gone before the async tests of the next module run."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("Playwright is not installed (pip install -e '.[test]')")
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        skip_or_fail("Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        yield browser
        browser.close()


@pytest.fixture
def phone(browser):
    """A page the size of a phone, French."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="fr-FR", is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    # The site's CSP (funding.security) refuses inline scripts: a page that needed one would break
    # silently in a real browser; here, chromium's report of it fails the test.
    blocked: list[str] = []
    page.on("console", lambda message: blocked.append(message.text) if "Content Security Policy" in message.text else None)
    yield page
    context.close()
    assert blocked == [], blocked
