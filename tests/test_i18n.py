"""The English catalog covers every French message id, and the app actually uses it.

When a test here fails after adding strings: python -m funding.i18n_catalog update,
translate the new empty entries in funding/locale/en/LC_MESSAGES/messages.po.
"""

from __future__ import annotations

import pytest

from funding import i18n
from funding.i18n_catalog import extract, load, problems


@pytest.fixture(scope="module")
def catalog():
    return load()


def test_every_message_has_an_english_translation_with_the_same_placeholders(catalog):
    found = problems(catalog, extract())
    assert not found, "run `python -m funding.i18n_catalog update` and translate:\n" + "\n".join(found)


def test_placeholder_mismatches_are_caught():
    template, broken = extract(), load()
    broken.get("Bienvenue, %(name)s.").string = "Welcome, %(nom)s."
    assert problems(broken, template) == ["placeholders ['nom'] instead of ['name']: 'Bienvenue, %(name)s.'"]


def test_no_fuzzy_entries(catalog):
    assert [m.id for m in catalog if m.id and m.fuzzy] == []


def test_catalog_compiles():
    assert i18n.translations("en").gettext("Accueil") == "Home"
    assert i18n.translations("fr").gettext("Accueil") == "Accueil"


@pytest.fixture
def english():
    token = i18n.set_locale("en")
    yield
    i18n._current.reset(token)


def test_gettext_and_ngettext_follow_the_locale(english):
    assert i18n.gettext("D'où vient l'argent") == "Where the money comes from"
    assert i18n.gettext("Bienvenue, %(name)s.", name="Ada") == "Welcome, Ada."
    assert i18n.gettext(i18n.SOURCE_LABELS["crowdfunding"]) == "Crowdfunding"
    assert i18n.ngettext("%(num)d écriture", "%(num)d écritures", 1) == "1 entry"
    assert i18n.ngettext("%(num)d écriture", "%(num)d écritures", 3) == "3 entries"


def test_templates_render_in_english():
    from funding.web import make_templates

    env = make_templates().env
    env.install_gettext_translations(i18n.translations("en"), newstyle=True)
    page = env.from_string('{{ _("Se connecter") }} · {{ ngettext("%(num)d écriture", "%(num)d écritures", 2) }}')
    assert page.render() == "Log in · 2 entries"


async def test_the_english_catalog_is_compiled_once_per_process(english, monkeypatch, client):
    """Reading and compiling the .po takes ~50 ms: it happens once, not at each message or page
    (a misplaced cache made every English message and page pay it, 2026-12-04 to 12-06)."""
    reads = []
    original = i18n.read_po
    monkeypatch.setattr(i18n, "read_po", lambda *a, **kw: reads.append(1) or original(*a, **kw))
    getattr(i18n.translations, "cache_clear", lambda: None)()  # from a cold process
    for _ in range(3):
        assert i18n.gettext("Accueil") == "Home"
        assert i18n.ngettext("%(num)d écriture", "%(num)d écritures", 3) == "3 entries"
    for _ in range(3):  # pages in English: the templates' translations too
        page = await client.get("/?lang=en")
        assert page.status_code == 200 and 'lang="en"' in page.text
    assert len(reads) == 1
