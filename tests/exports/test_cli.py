"""``funding export`` on the command line: files with their legal names, clear errors,
and a progress bar only on a terminal."""

from __future__ import annotations

import datetime as dt
import io

from funding.exports.cli import ProgressBar
from tests.support import fec_checker
from tests.support.cli import funding as cli
from tests.support.exports import fec_name
from tests.support.world import post_gift

TODAY = dt.date.today()


async def test_export_writes_the_fec_under_its_legal_name_and_each_format(settings, sessions, world, tmp_path):
    for n in range(3):
        await post_gift(sessions, world, key=f"stripe:txn_{n}", amount=5000 + n)
    span = ["--from", TODAY.replace(day=1).isoformat(), "--to", TODAY.isoformat()]
    result = await cli(settings, "export", "--format", "fec", *span, "--output", str(tmp_path / "fec"))
    assert result.exit_code == 0, result.stderr
    name = fec_name(world.siren, TODAY.replace(day=1), TODAY)
    assert fec_checker.check_fec(name, (tmp_path / "fec" / name).read_bytes()) == []
    assert "9 lignes" in result.stdout and "sha256" in result.stdout
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    assert "UTF-8" in (tmp_path / "fec" / name.replace(".txt", "-description.txt")).read_text(encoding="utf-8")
    for fmt, suffix in (("csv", ".csv"), ("beancount", ".beancount"), ("hledger", ".journal"), ("general-ledger", ".csv")):
        target = tmp_path / f"out{suffix}"
        result = await cli(settings, "export", "--format", fmt, *span, "--org", world.siren, "--site", world.site_slug,
                           "--output", str(target))
        assert result.exit_code == 0 and target.stat().st_size > 0, (fmt, result.stderr)
    log = await cli(settings, "exports", "log")
    assert log.stdout.count("cli:") == 5


async def test_export_errors_are_one_line_and_leave_no_file(settings, sessions, world, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "file.txt").write_text("x")
    cases = [
        (["--from", "2026-02-30", "--to", "2026-03-01", "--output", str(out)], "date de début (--from) invalide"),
        (["--from", "2026-03-01", "--to", "2026-02-01", "--output", str(out)], "période inversée"),
        (["--from", "2026-01-01", "--to", "2026-01-31", "--site", "nulle-part", "--output", str(out)], "site inconnu"),
        (["--from", "2026-01-01", "--to", "2026-01-31", "--org", "123456789", "--output", str(out)], "SIREN"),
        (["--from", "2026-01-01", "--to", "2026-01-31", "--output", str(out / "file.txt")], "répertoire"),
    ]
    for args, message in cases:
        result = await cli(settings, "export", "--format", "fec", *args)
        assert result.exit_code == 1 and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["file.txt"]


def test_the_progress_bar_draws_only_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    shown = Terminal()
    bar = ProgressBar(1000, shown)
    bar(500)
    bar(500)
    bar.finish()
    assert "100 %" in shown.getvalue() and "1\u202f000/1\u202f000 lignes" in shown.getvalue()
    hidden = io.StringIO()
    bar = ProgressBar(1000, hidden)
    bar(1000)
    bar.finish()
    assert hidden.getvalue() == ""
