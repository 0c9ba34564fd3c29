"""Issue 17: English complete. Every page of the demo, as each persona sees it in English, is
scanned for French message ids whose English translation exists: one found means a string
that bypasses the catalogue (a raw status word, a label built in Python, a name in an export)."""

from __future__ import annotations

import re

import httpx
from babel.messages.pofile import read_po

from funding.settings import PROJECT_ROOT
from tests.support.demo_pages import PERSONAS, crawl, logged_in, seed_demo, visible_text

PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]")


def french_phrases() -> dict[str, str]:
    """Literal runs of the catalogue's French message ids (two words or more, 14 characters or
    more, so that a name or a number shared by both languages is not one), with the msgid."""
    with (PROJECT_ROOT / "funding/locale/en/LC_MESSAGES/messages.po").open("rb") as fh:
        catalog = read_po(fh)
    phrases: dict[str, str] = {}
    for message in catalog:
        if not message.id or not message.string or isinstance(message.id, tuple) or message.string == message.id:
            continue
        for run in PLACEHOLDER.split(message.id):
            run = re.sub(r"\s+", " ", run).strip(" .:;,!?()«»—-")
            if len(run) >= 14 and " " in run and run not in message.string:
                phrases[run] = message.id
    return phrases


# Data, not interface: French whatever the language of the page (a message id of the same words
# exists for another use).
DATA = {
    # the plan comptable des associations: the accounts' legal names, as the FEC and the books keep them
    "Dons en nature", "Mise à disposition gratuite de biens", "Personnel bénévole", "Prestations en nature",
    "Secours en nature",
    # the official Cerfa n° 15059 (a grant's financial report) names its categories in French
    "Autres produits",
    # what the staff typed: the bar's product categories, a grant's object
    "Boissons chaudes", "tiers-lieux du bassin thiernois",
}


def test_every_page_of_the_demo_in_english_has_no_french_message_left(e2e):
    seed_demo(e2e.settings)
    phrases = french_phrases()
    pattern = re.compile("|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True)))
    found: dict[str, set[str]] = {}
    pages = 0
    seen: dict[str, set[str]] = {}
    for persona, (email, starts) in PERSONAS.items():
        with httpx.Client(base_url=e2e.url, follow_redirects=True, timeout=30) as client:
            logged_in(e2e, email, client)
            client.get("/?lang=en")
            for path, response in crawl(client, starts):
                pages += 1
                seen.setdefault(persona, set()).add(path)
                assert response.status_code < 500, (persona, path)
                assert '<html lang="en">' in response.text, (persona, path)
                for hit in pattern.findall(visible_text(response.text)):
                    if phrases[hit] in DATA:
                        continue
                    found.setdefault(phrases[hit][:80], set()).add(f"{persona} {path}")
    assert pages >= 40, pages
    assert {"/membre", "/mes-contributions"} <= seen["member"], sorted(seen["member"])  # the member's own pages, in English
    assert found == {}, "\n".join(f"{msg!r}: {sorted(where)[:3]}" for msg, where in sorted(found.items()))
