"""Safe formatted text and amounts in French words (no database)."""

from __future__ import annotations

import pytest

from funding.campaigns.richtext import plain, render
from funding.campaigns.words import amount_in_words, integer_words


def test_markup_subset_becomes_html():
    html = str(render("Un **grand** projet, *vraiment*.\nDeuxième ligne.\n\n- une\n- deux\n\n## Le lieu\n\n"
                      "Voir [notre site](https://entre-lab.example/lieu?a=1&b=2)."))
    assert "<p>Un <strong>grand</strong> projet, <em>vraiment</em>.<br>Deuxième ligne.</p>" in html
    assert "<ul><li>une</li><li>deux</li></ul>" in html
    assert "<h3>Le lieu</h3>" in html
    assert '<a href="https://entre-lab.example/lieu?a=1&amp;b=2" rel="nofollow ugc noopener">notre site</a>' in html


@pytest.mark.parametrize("source", [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[clic](javascript:alert(1))",
    '[clic](https://x.example/"onmouseover="alert(1))',
    "[<b>x</b>](https://ok.example)",
    "**<iframe src=//evil>**",
])
def test_no_html_written_by_a_person_reaches_the_page(source):
    html = str(render(source))
    assert "<script" not in html and "<img" not in html and "<iframe" not in html and "<b>" not in html
    assert 'href="javascript' not in html
    assert '" onmouseover' not in html and '"onmouseover' not in html


def test_a_heading_and_a_list_may_share_a_block_with_text():
    html = str(render("## Ce que permettra la machine\n- des ateliers ;\n- du prototypage.\nEt plus encore."))
    assert html == ("<h3>Ce que permettra la machine</h3>\n<ul><li>des ateliers ;</li><li>du prototypage.</li></ul>\n"
                    "<p>Et plus encore.</p>")


def test_plain_text_drops_the_marks():
    assert plain("Un **grand** [projet](https://x.example) *ici*") == "Un grand projet ici"
    assert plain("a" * 400, 10) == "a" * 9 + "…"


@pytest.mark.parametrize("n, words", [
    (0, "zéro"), (1, "un"), (17, "dix-sept"), (21, "vingt et un"), (71, "soixante et onze"), (72, "soixante-douze"),
    (80, "quatre-vingts"), (81, "quatre-vingt-un"), (91, "quatre-vingt-onze"), (100, "cent"), (200, "deux cents"),
    (201, "deux cent un"), (1000, "mille"), (2000, "deux mille"), (80_000, "quatre-vingt mille"),
    (200_000, "deux cent mille"), (1_000_000, "un million"), (2_500_000, "deux millions cinq cent mille"),
])
def test_integers_in_french_words(n, words):
    assert integer_words(n) == words


def test_amounts_in_words_as_a_receipt_states_them():
    assert amount_in_words(12050, "EUR") == "cent vingt euros et cinquante centimes"
    assert amount_in_words(100, "EUR") == "un euro"
    assert amount_in_words(101, "EUR") == "un euro et un centime"
    assert amount_in_words(100_000_000, "EUR") == "un million d'euros"
