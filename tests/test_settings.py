import pytest

from funding.settings import ConfigError, load_settings

PROD = {
    "SECRET_KEY": "s" * 32,
    "STRIPE_SECRET_KEY": "sk_live_abc",
    "STRIPE_WEBHOOK_SECRET": "whsec_abc",
    "SMTP_URL": "smtp://mail.example.org:587",
    "BASE_URL": "https://funding.entre-lab.fr",
    "DATABASE_URL": "postgres://u:p@db.example.org/funding",
    "LEDGER_SEAL_KEY": "dGVzdC1zZWFsLWtleS1mb3ItZW50cmUtbGFiLXRlc3Q=",
}


def test_production_settings_load_and_pick_the_async_driver():
    s = load_settings(PROD)
    assert s.is_production and s.stripe_livemode and not s.uses_sandbox
    assert s.database_url == "postgresql+asyncpg://u:p@db.example.org/funding"


@pytest.mark.parametrize(
    "changes, variable",
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"LEDGER_SEAL_KEY": ""}, "LEDGER_SEAL_KEY"),
        ({"LEDGER_SEAL_KEY": "not-a-key"}, "LEDGER_SEAL_KEY"),
        ({"LEDGER_SEAL_PUBLIC_KEYS": "c2hvcnQ="}, "LEDGER_SEAL_PUBLIC_KEYS"),
        ({"MIGRATION_DATABASE_URL": "sqlite:///x.db"}, "MIGRATION_DATABASE_URL"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"STRIPE_SECRET_KEY": ""}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_SECRET_KEY": "pk_live_oops"}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_WEBHOOK_SECRET": ""}, "STRIPE_WEBHOOK_SECRET"),
        ({"STRIPE_WEBHOOK_SECRET": "secret"}, "STRIPE_WEBHOOK_SECRET"),
        ({"STRIPE_API_BASE": "http://127.0.0.1:9/_sandbox/stripe"}, "STRIPE_API_BASE"),
        ({"SMTP_URL": ""}, "SMTP_URL"),
        ({"SMTP_URL": "http://mail"}, "SMTP_URL"),
        ({"BASE_URL": "http://funding.entre-lab.fr"}, "BASE_URL"),
        ({"BASE_URL": "funding.entre-lab.fr"}, "BASE_URL"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"DEFAULT_LOCALE": "de"}, "DEFAULT_LOCALE"),
        ({"FUNDING_ENV": "staging"}, "FUNDING_ENV"),
        ({"WORKER_POLL_SECONDS": "often"}, "WORKER_POLL_SECONDS"),
    ],
)
def test_a_misconfiguration_names_its_variable_in_one_line(changes, variable):
    with pytest.raises(ConfigError) as info:
        load_settings({**PROD, **changes})
    message = str(info.value)
    assert message.startswith(f"{variable}:") and "\n" not in message


def test_development_runs_on_embedded_defaults_with_a_generated_secret_and_the_sandbox():
    s = load_settings({"FUNDING_ENV": "development"})
    assert s.database_url.startswith("sqlite+aiosqlite:///") and s.database_url.endswith("var/funding.db")
    assert len(s.secret_key) >= 32 and s.uses_sandbox
    assert s.stripe_webhook_secret.startswith("whsec_")  # never empty, never "no verification"
    assert load_settings({"FUNDING_ENV": "development", "STRIPE_WEBHOOK_SECRET": "whsec_mine"}).stripe_webhook_secret == "whsec_mine"


def test_commands_that_serve_nobody_do_not_need_the_web_secrets():
    s = load_settings({"DATABASE_URL": "postgresql://db/x"}, serving=False)
    assert s.is_production and s.database_url.startswith("postgresql+asyncpg")


def test_the_web_entry_point_stops_with_the_message(monkeypatch):
    from funding.app import create_app

    for key in [*PROD, "FUNDING_ENV"]:
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(SystemExit, match="configuration error: SECRET_KEY: required in production"):
        create_app()
