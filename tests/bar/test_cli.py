"""`funding bar …` from a terminal: one line per result, one line per refusal, exit codes."""

from __future__ import annotations

from tests.support.bar import make_bar, sell
from tests.support.cli import funding as run


async def test_close_day_from_the_command_line(sessions, world, settings):
    bar = await make_bar(sessions, world)
    await sell(sessions, bar, "Café", quantity=2)
    await sell(sessions, bar, "Bière locale")
    result = await run(settings, "bar", "close-day", "--site", world.site_slug)
    assert result.exit_code == 0, result.stderr
    assert "closed — 2 lines (0 cancelling), total 7,50 EUR" in result.stdout and "grand total 7,50 EUR" in result.stdout
    again = await run(settings, "bar", "close-day", "--site", world.site_slug)
    assert again.exit_code == 1 and again.stderr.startswith("error: La journée du") and "Traceback" not in again.stderr


async def test_bad_arguments_and_files_get_one_line_and_change_nothing(sessions, world, settings, tmp_path):
    await make_bar(sessions, world)
    bad = tmp_path / "menu.csv"
    bad.write_text("nom;prix;tva\nCafé;1,60;10\nKir;3,00;19\n", encoding="utf-8")
    for args, message in [
        (("bar", "close-day", "--date", "28/11/2026"), "invalid date"),
        (("bar", "close-month", "2026-13", "--site", world.site_slug), "Mois invalide"),
        (("bar", "import-products", str(bad), "--site", world.site_slug), "ligne 3, colonne tva : Taux de TVA invalide"),
        (("bar", "import-products", str(tmp_path / "none.csv"), "--site", world.site_slug), "no such file"),
    ]:
        result = await run(settings, *args)
        assert result.exit_code == 1 and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    good = tmp_path / "good.csv"
    good.write_text("nom;categorie;prix;tva\nPart de tarte;Pâtisseries;3,20;10\nCafé;Boissons chaudes;1,60;10\n",
                    encoding="utf-8")
    result = await run(settings, "bar", "import-products", str(good), "--site", world.site_slug)
    assert result.exit_code == 0 and "1 product(s) added, 1 updated" in result.stdout
