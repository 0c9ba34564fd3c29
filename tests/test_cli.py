"""The command line: clear one-line errors, non-zero exits, nothing changed on bad input."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from funding.ledger.models import Entry
from tests.support.cli import funding as cli
from tests.support.cli import invoke_bare


async def test_create_org_site_user_and_record_money(settings, sessions, tmp_path):
    r = await cli(settings, "org", "create", "--name", "Entre-Lab", "--siren", "912345675", "--vat-liable", "--general-interest")
    assert r.exit_code == 0, r.stderr
    assert (await cli(settings, "site", "create", "--slug", "thiers", "--name", "Entre-Lab Thiers", "--central")).exit_code == 0
    assert (await cli(settings, "user", "create", "--email", "a@entre-lab.fr", "--name", "A", "--role", "admin")).exit_code == 0
    link = await cli(settings, "user", "login-link", "a@entre-lab.fr")
    assert link.exit_code == 0 and link.stdout.startswith("http://testserver/login/")

    today = dt.date.today().isoformat()
    r = await cli(settings, "ledger", "record", "grant-notified", "--site", "thiers", "--date", today, "--amount", "12000,00",
                  "--funder", "Thiers Dore et Montagne", "--funder-siret", "20005376700014", "--reference", "TDM-1",
                  "--object", "FabLab", "--nature", "investment")
    assert r.exit_code == 0 and "recorded as entry 1" in r.stdout, r.stderr
    csv_file = tmp_path / "ops.csv"
    csv_file.write_text(f"kind,reference,date,amount,piece_ref\ngrant-paid,TDM-1,{today},6000,RELEVE-1\n", encoding="utf-8")
    r = await cli(settings, "ledger", "record", "--file", str(csv_file))
    assert r.exit_code == 0 and "entry 2" in r.stdout
    again = await cli(settings, "ledger", "record", "--file", str(csv_file))
    assert "already recorded as entry 2" in again.stdout

    tb = await cli(settings, "ledger", "trial-balance")
    assert "441" in tb.stdout and "6000,00" in tb.stdout and "TOTAL" in tb.stdout
    assert (await cli(settings, "ledger", "verify")).exit_code == 0
    r = await cli(settings, "ledger", "reverse", "2", "--reason", "erreur de montant")
    assert r.exit_code == 0 and "reversed by entry 3" in r.stdout
    accounts = await cli(settings, "ledger", "accounts", "--add", "6064", "Fournitures administratives")
    assert accounts.exit_code == 0
    assert "6064" in (await cli(settings, "ledger", "accounts")).stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["org", "create", "--name", "X", "--siren", "123456789"], "SIREN invalide"),
        (["site", "create", "--slug", "Bad Slug", "--name", "X"], "aucune organisation"),
        (["ledger", "close", "2026-13"], "aucune organisation"),
        (["ledger", "record", "grant-paid", "--date", "2026-01-01"], "--date and --amount are required"),
        (["ledger", "record", "--file", "/nonexistent.csv"], "no such file"),
        (["ledger", "trial-balance", "--from", "yesterday"], "invalid date"),
        (["user", "create", "--email", "nope", "--name", "X", "--role", "member"], "invalide"),
        (["user", "create", "--email", "mallory@example.org,eve", "--name", "X", "--role", "member"], "une seule adresse"),
    ],
)
async def test_bad_arguments_get_one_clear_line_and_a_non_zero_exit(settings, args, message):
    r = await cli(settings, *args)
    assert r.exit_code != 0
    assert message in r.stderr and "Traceback" not in r.stderr


async def test_a_bad_csv_line_records_nothing(settings, sessions, world, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "kind,site,date,amount,funder,piece_ref\n"
        f"patronage,{world.site_slug},{dt.date.today()},100,Fondation,M-1\n"
        f"patronage,{world.site_slug},{dt.date.today()},-3,Fondation,M-2\n",
        encoding="utf-8",
    )
    r = await cli(settings, "ledger", "record", "--file", str(path), "--site", world.site_slug)
    assert r.exit_code == 1 and "ligne 3, colonne amount" in r.stderr and "nothing was recorded" in r.stderr
    async with sessions() as session:
        assert await session.scalar(select(func.count(Entry.id))) == 0


def test_misconfiguration_exits_with_the_variable_named():
    env = {"FUNDING_ENV": None, "SECRET_KEY": None, "DATABASE_URL": "mysql://nope"}
    r = invoke_bare("ledger", "verify", **env)
    assert r.exit_code == 2 and r.stderr.startswith("configuration error: DATABASE_URL:")
    r = invoke_bare("nonsense", **env)
    assert r.exit_code == 2 and "invalid choice" in r.stderr


def test_the_installed_command_runs_as_a_module(tmp_path):
    """`python -m funding.cli` (what the README's `funding` is): one real start-up, one clear line."""
    env = {k: v for k, v in os.environ.items() if k not in ("FUNDING_ENV", "SECRET_KEY")}
    env["DATABASE_URL"] = "mysql://nope"
    r = subprocess.run([sys.executable, "-m", "funding.cli", "ledger", "verify"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 2 and r.stderr == "configuration error: DATABASE_URL: unsupported database URL scheme 'mysql' " \
        "(use sqlite:/// or postgresql://)\n"
