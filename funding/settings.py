"""Settings: the only module that reads the environment.

Every misconfiguration raises :class:`ConfigError` with a one-line message naming the
variable; the command line and the web entry point print it and stop.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from funding.db import digits
from funding.errors import FundingError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("production", "development", "test")
LOCALES = ("fr", "en")


class ConfigError(FundingError):
    """A setting is missing or malformed. The message names the variable. The command line
    exits with 2 for it (a misconfigured installation, not a refused command)."""

    status = 500
    exit_code = 2


@dataclass(frozen=True)
class Settings:
    environment: str = "production"
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'funding.db'}"
    # The schema's owner, for migrations only; the service connects as DATABASE_URL's role.
    migration_database_url: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    base_url: str = "http://127.0.0.1:8000"
    stripe_secret_key: str = field(default="", repr=False)
    stripe_webhook_secret: str = field(default="", repr=False)
    stripe_api_base: str = ""
    # Prefix of our idempotency keys (and the ``entrelab_installation`` metadata of what we create);
    # empty: ``entrelab-`` + an id this database draws at first use (funding.payments.calls.key_prefix).
    stripe_idempotency_prefix: str = ""
    smtp_url: str = field(default="", repr=False)
    mail_from: str = "Entre-Lab <noreply@entre-lab.fr>"
    default_locale: str = "fr"
    login_link_max_age: int = 900
    worker_poll_seconds: float = 2.0
    coworking_grace_days: int = 7
    bar_tab_limit: int = 5000  # minor units: a member's open tab, all the organisation's sites together, may not exceed it
    bar_cutoff_day: int = 1  # day of the month on which open tabs are billed
    # Ed25519 key that signs the ledger's seals (never stored in the database), and the public
    # keys of earlier ones that seals may still be signed with (base64 of the 32 raw bytes).
    seal_key: str = field(default="", repr=False)
    seal_public_keys: tuple[str, ...] = ()
    # Rate limits changed from their defaults (funding.limits.service.DEFAULTS): (action, hits, seconds);
    # hits 0 turns the action's limit off.
    rate_limits: tuple[tuple[str, int, int], ...] = ()
    # How many proxies in front of the web process append to X-Forwarded-For (0: none trusted,
    # the client is the ASGI peer).
    trusted_proxies: int = 0
    # Where uploaded images are kept (funding.media): a local directory served at /media/, or an
    # S3-compatible bucket when s3_bucket is set.
    media_dir: str = str(PROJECT_ROOT / "var" / "media")
    s3_endpoint_url: str = ""
    s3_bucket: str = ""
    s3_region: str = "fr-par"
    s3_access_key_id: str = field(default="", repr=False)
    s3_secret_access_key: str = field(default="", repr=False)
    s3_public_url: str = ""
    # Deployment (README, Deployment): the connection pool of each process, and how long a request
    # waits for a connection before it is refused (503) instead of queueing without end.
    db_pool_size: int = 10
    db_max_overflow: int = 5
    db_pool_timeout: float = 5.0
    # PgBouncer in transaction mode in front of PostgreSQL: no prepared statement outlives its
    # transaction, no session setting is sent at connection time.
    db_pgbouncer: bool = False
    # A read-only replica for pages and exports that only read (empty: the primary).
    database_replica_url: str = field(default="", repr=False)
    # Processes that lease webhook events beat every HEARTBEAT_SECONDS; one silent for
    # HEARTBEAT_STALE_SECONDS is dead and its leases are taken again.
    heartbeat_seconds: float = 5.0
    heartbeat_stale_seconds: float = 30.0
    # Request bodies: an anonymous request (no signed-in session) may send this many bytes, a
    # signed-in one this many (uploads: funding.ops.bodies.UPLOADS); more is refused (413) unread.
    max_body_anonymous: int = 64 * 1024
    max_body_member: int = 1024 * 1024
    log_format: str = "text"  # or "json": one JSON line per request and per job
    # Exports (FEC, journals) a web process reads from the database at once; more wait their turn.
    export_concurrency: int = 2
    # Webhook events a worker claims per batch (one transaction each; several batches run at once).
    webhook_batch: int = 500

    @property
    def engine_options(self) -> dict:
        """funding.db.create_engine's pool and driver options for this deployment."""
        return {"pool_size": self.db_pool_size, "max_overflow": self.db_max_overflow, "pool_timeout": self.db_pool_timeout,
                "pgbouncer": self.db_pgbouncer}

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def uses_sandbox(self) -> bool:
        """No Stripe key: talk to our own offline Stripe stand-in."""
        return not self.stripe_secret_key

    @property
    def demo_mailbox(self) -> bool:
        """The demo mailbox (/dev/mailbox) shows the emails only when they go nowhere else: the
        offline sandbox (no Stripe key) and no SMTP server, outside production. Anything real
        configured, whatever FUNDING_ENV says, and the page does not exist."""
        return self.uses_sandbox and not self.smtp_url and not self.is_production

    @property
    def stripe_livemode(self) -> bool:
        return self.stripe_secret_key.startswith(("sk_live_", "rk_live_"))

    def with_(self, **changes) -> Settings:
        return replace(self, **changes)


def _normalise_database_url(name: str, url: str) -> str:
    """Accept the URLs platforms hand out and pick our async drivers."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    scheme = url.split(":", 1)[0]
    if scheme in ("postgresql", "postgresql+asyncpg"):
        return "postgresql+asyncpg" + url[len(scheme) :]
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        return "sqlite+aiosqlite" + url[len(scheme) :]
    raise ConfigError(f"{name}: unsupported database URL scheme {scheme!r} (use sqlite:/// or postgresql://)")


def load_settings(environ: Mapping[str, str] | None = None, *, serving: bool = True, **overrides) -> Settings:
    """Read and check the settings. ``overrides`` win over the environment.

    ``serving=False`` is for commands that serve nobody (migrations, ledger checks):
    they still refuse malformed values but do not need the web's secrets.
    """
    env = dict(os.environ if environ is None else environ)
    for key, value in overrides.items():
        if value is not None:
            env[key.upper()] = str(value)

    environment = env.get("FUNDING_ENV", "production").strip() or "production"
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"FUNDING_ENV: must be one of {', '.join(ENVIRONMENTS)}, not {environment!r}")

    defaults = Settings()
    database_url = _normalise_database_url("DATABASE_URL", env.get("DATABASE_URL") or defaults.database_url)
    migration_url = database_url
    if env.get("MIGRATION_DATABASE_URL"):
        migration_url = _normalise_database_url("MIGRATION_DATABASE_URL", env["MIGRATION_DATABASE_URL"])
        if migration_url.split("+", 1)[0] != database_url.split("+", 1)[0]:
            raise ConfigError("MIGRATION_DATABASE_URL: must name the same kind of database as DATABASE_URL")

    secret_key = env.get("SECRET_KEY", "")
    if not secret_key:
        if environment == "production" and serving:
            raise ConfigError("SECRET_KEY: required in production (or set FUNDING_ENV=development)")
        secret_key = secrets.token_urlsafe(32)
    elif len(secret_key) < 16:
        raise ConfigError("SECRET_KEY: too short, use at least 16 random characters")

    base_url = (env.get("BASE_URL") or defaults.base_url).rstrip("/")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"BASE_URL: must be an absolute http(s) URL, not {base_url!r}")
    if environment == "production" and parts.scheme != "https" and parts.hostname not in ("127.0.0.1", "localhost"):
        raise ConfigError("BASE_URL: must use https in production")

    stripe_key = env.get("STRIPE_SECRET_KEY", "")
    if stripe_key and not stripe_key.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")):
        raise ConfigError("STRIPE_SECRET_KEY: expected a key starting with sk_test_, sk_live_, rk_test_ or rk_live_")
    if environment == "production" and serving and not stripe_key:
        raise ConfigError("STRIPE_SECRET_KEY: required in production (the offline sandbox is a development tool)")

    api_base = (env.get("STRIPE_API_BASE") or "").rstrip("/")
    if api_base and urlsplit(api_base).scheme not in ("http", "https"):
        raise ConfigError(f"STRIPE_API_BASE: must be an http(s) URL, not {api_base!r}")
    if stripe_key.startswith(("sk_live_", "rk_live_")) and api_base and api_base != "https://api.stripe.com":
        raise ConfigError("STRIPE_API_BASE: a live key only ever talks to https://api.stripe.com")

    webhook_secret = env.get("STRIPE_WEBHOOK_SECRET", "")
    if webhook_secret and not webhook_secret.startswith("whsec_"):
        raise ConfigError("STRIPE_WEBHOOK_SECRET: expected a secret starting with whsec_")
    if not webhook_secret:
        if stripe_key and serving:
            raise ConfigError("STRIPE_WEBHOOK_SECRET: required with STRIPE_SECRET_KEY; webhooks are never accepted unverified")
        # The sandbox signs its own deliveries: a per-process secret shared with it.
        webhook_secret = "whsec_" + secrets.token_hex(24)

    smtp_url = env.get("SMTP_URL", "")
    if smtp_url and urlsplit(smtp_url).scheme not in ("smtp", "smtps", "smtp+starttls"):
        raise ConfigError("SMTP_URL: expected smtp://, smtp+starttls:// or smtps://user:password@host:port")
    if environment == "production" and serving and not smtp_url:
        raise ConfigError("SMTP_URL: required in production (login links are sent by email)")

    locale = env.get("DEFAULT_LOCALE", "fr")
    if locale not in LOCALES:
        raise ConfigError(f"DEFAULT_LOCALE: must be one of {', '.join(LOCALES)}, not {locale!r}")

    def _number(name: str, default, kind=int):
        raw = env.get(name)
        if raw in (None, ""):
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"{name}: expected a number, not {raw!r}") from None
        if value <= 0:
            raise ConfigError(f"{name}: must be positive")
        return value

    def _count(name: str, default: int) -> int:
        raw = env.get(name, "").strip()
        if not raw:
            return default
        if not digits(raw):
            raise ConfigError(f"{name}: expected a whole number, not {raw!r}")
        return int(raw)

    def _flag(name: str) -> bool:
        raw = env.get(name, "").strip().lower()
        if raw not in ("", "0", "1", "true", "false", "yes", "no"):
            raise ConfigError(f"{name}: expected 1 or 0, not {raw!r}")
        return raw in ("1", "true", "yes")

    replica_url = ""
    if env.get("DATABASE_REPLICA_URL"):
        replica_url = _normalise_database_url("DATABASE_REPLICA_URL", env["DATABASE_REPLICA_URL"])
        if replica_url.split("+", 1)[0] != database_url.split("+", 1)[0]:
            raise ConfigError("DATABASE_REPLICA_URL: must name the same kind of database as DATABASE_URL")
    log_format = env.get("LOG_FORMAT", "text").strip().lower() or "text"
    if log_format not in ("text", "json"):
        raise ConfigError(f"LOG_FORMAT: text or json, not {log_format!r}")

    seal_key = env.get("LEDGER_SEAL_KEY", "").strip()
    if seal_key:
        _check_seal_key(seal_key)
    elif environment == "production" and serving:
        raise ConfigError("LEDGER_SEAL_KEY: required in production (closings are sealed with it; "
                          "`funding ledger seal-key` makes one)")
    public_keys = tuple(k.strip() for k in env.get("LEDGER_SEAL_PUBLIC_KEYS", "").split(",") if k.strip())
    for key in public_keys:
        _check_public_key(key)
    if environment == "development" and database_url.startswith("sqlite") and (not seal_key or not env.get("SECRET_KEY")):
        # A development installation on its embedded database keeps its keys beside it, so that
        # links, sessions and seals outlive a restart and the command line sees the same keys.
        kept = _development_secrets(database_url)
        secret_key = env.get("SECRET_KEY") or kept["secret_key"]
        seal_key = seal_key or kept["seal_key"]
    if not seal_key and environment != "production":
        seal_key = generate_seal_key()

    return Settings(
        environment=environment,
        database_url=database_url,
        migration_database_url=migration_url,
        secret_key=secret_key,
        base_url=base_url,
        stripe_secret_key=stripe_key,
        stripe_webhook_secret=webhook_secret,
        stripe_api_base=api_base,
        stripe_idempotency_prefix=_idempotency_prefix(env.get("STRIPE_IDEMPOTENCY_PREFIX", "")),
        smtp_url=smtp_url,
        mail_from=env.get("MAIL_FROM") or defaults.mail_from,
        default_locale=locale,
        login_link_max_age=_number("LOGIN_LINK_MAX_AGE", defaults.login_link_max_age),
        worker_poll_seconds=_number("WORKER_POLL_SECONDS", defaults.worker_poll_seconds, float),
        coworking_grace_days=_number("COWORKING_GRACE_DAYS", defaults.coworking_grace_days),
        bar_tab_limit=_bar_tab_limit(env.get("BAR_TAB_LIMIT"), defaults.bar_tab_limit),
        bar_cutoff_day=_bar_cutoff_day(env.get("BAR_CUTOFF_DAY"), defaults.bar_cutoff_day),
        seal_key=seal_key,
        seal_public_keys=public_keys,
        rate_limits=_rate_limits(env.get("RATE_LIMITS", "")),
        trusted_proxies=_trusted_proxies(env.get("TRUSTED_PROXIES")),
        **_media(env, defaults),
        db_pool_size=_number("DATABASE_POOL_SIZE", defaults.db_pool_size),
        db_max_overflow=_count("DATABASE_MAX_OVERFLOW", defaults.db_max_overflow),
        db_pool_timeout=_number("DATABASE_POOL_TIMEOUT", defaults.db_pool_timeout, float),
        db_pgbouncer=_flag("DATABASE_PGBOUNCER"),
        database_replica_url=replica_url,
        heartbeat_seconds=_number("HEARTBEAT_SECONDS", defaults.heartbeat_seconds, float),
        heartbeat_stale_seconds=_number("HEARTBEAT_STALE_SECONDS", defaults.heartbeat_stale_seconds, float),
        max_body_anonymous=_number("MAX_BODY_ANONYMOUS", defaults.max_body_anonymous),
        max_body_member=_number("MAX_BODY_MEMBER", defaults.max_body_member),
        log_format=log_format,
        export_concurrency=_number("EXPORT_CONCURRENCY", defaults.export_concurrency),
        webhook_batch=_number("WEBHOOK_BATCH", defaults.webhook_batch),
    )


def _media(env, defaults: Settings) -> dict:
    """MEDIA_DIR, or S3_BUCKET with S3_ENDPOINT_URL, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY
    (S3_REGION, S3_PUBLIC_URL optional)."""
    bucket = env.get("S3_BUCKET", "").strip()
    endpoint = env.get("S3_ENDPOINT_URL", "").strip()
    public = env.get("S3_PUBLIC_URL", "").strip()
    if bucket:
        missing = [name for name in ("S3_ENDPOINT_URL", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY") if not env.get(name)]
        if missing:
            raise ConfigError(f"S3_BUCKET is set: {', '.join(missing)} required too")
        for name, url in (("S3_ENDPOINT_URL", endpoint), ("S3_PUBLIC_URL", public)):
            if url and urlsplit(url).scheme not in ("https", "http"):
                raise ConfigError(f"{name}: expected an https:// address, not {url!r}")
    return {"media_dir": env.get("MEDIA_DIR") or defaults.media_dir, "s3_endpoint_url": endpoint, "s3_bucket": bucket,
            "s3_region": env.get("S3_REGION") or defaults.s3_region, "s3_access_key_id": env.get("S3_ACCESS_KEY_ID", ""),
            "s3_secret_access_key": env.get("S3_SECRET_ACCESS_KEY", ""), "s3_public_url": public}


def _idempotency_prefix(raw: str) -> str:
    value = raw.strip()
    if value and not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", value):
        raise ConfigError("STRIPE_IDEMPOTENCY_PREFIX: 1 to 40 letters, digits, '-' or '_'")
    return value


def generate_seal_key() -> str:
    """A new Ed25519 private key, as LEDGER_SEAL_KEY takes it (base64 of its 32 raw bytes)."""
    import base64

    return base64.b64encode(secrets.token_bytes(32)).decode()


def _raw_key(name: str, value: str) -> bytes:
    import base64
    import binascii

    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"{name}: expected the base64 of a 32-byte Ed25519 key (`funding ledger seal-key` makes one)")
    return raw


def _check_seal_key(value: str) -> None:
    _raw_key("LEDGER_SEAL_KEY", value)


def _check_public_key(value: str) -> None:
    _raw_key("LEDGER_SEAL_PUBLIC_KEYS", value)


def _development_secrets(database_url: str) -> dict:
    """The keys a development database keeps in ``<database>.secrets.json`` (made on first use)."""
    import json

    from sqlalchemy.engine import make_url

    path = make_url(database_url).database
    if not path or path == ":memory:":
        return {"secret_key": secrets.token_urlsafe(32), "seal_key": generate_seal_key()}
    file = Path(f"{path}.secrets.json")
    try:
        kept = json.loads(file.read_text())
        if isinstance(kept, dict) and {"secret_key", "seal_key"} <= set(kept):
            return kept
    except (OSError, ValueError):
        pass
    kept = {"secret_key": secrets.token_urlsafe(32), "seal_key": generate_seal_key()}
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(kept))
    file.chmod(0o600)
    return kept


def _bar_tab_limit(raw: str | None, default: int) -> int:
    """BAR_TAB_LIMIT in euros as people write it (``50``, ``75,50``)."""
    if raw in (None, ""):
        return default
    from funding.money import MoneyError, parse_amount

    try:
        value = parse_amount(raw, "EUR")
    except MoneyError:
        raise ConfigError(f"BAR_TAB_LIMIT: expected an amount in euros such as 50 or 75,50, not {raw!r}") from None
    if value <= 0:
        raise ConfigError("BAR_TAB_LIMIT: must be positive")
    return value


def _bar_cutoff_day(raw: str | None, default: int) -> int:
    if raw in (None, ""):
        return default
    if not digits(raw.strip()) or not 1 <= int(raw) <= 28:
        raise ConfigError(f"BAR_CUTOFF_DAY: a day of the month from 1 to 28, not {raw!r}")
    return int(raw)


def _rate_limits(raw: str) -> tuple[tuple[str, int, int], ...]:
    """RATE_LIMITS: ``action=hits/seconds`` separated by commas (``login=5/900,api=120/60``);
    ``action=off`` lifts that limit. Unknown actions are refused (a typo would limit nothing)."""
    from funding.limits.rules import DEFAULTS

    out = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        action, _, rule = item.partition("=")
        action, rule = action.strip(), rule.strip()
        if action not in DEFAULTS:
            raise ConfigError(f"RATE_LIMITS: unknown action {action!r} (one of {', '.join(DEFAULTS)})")
        if rule == "off":
            out.append((action, 0, 1))
            continue
        hits, _, seconds = rule.partition("/")
        if not (digits(hits.strip()) and digits(seconds.strip()) and int(hits) > 0 and int(seconds) > 0):
            raise ConfigError(f"RATE_LIMITS: expected {action}=HITS/SECONDS (such as 5/900) or {action}=off, not {rule!r}")
        out.append((action, int(hits), int(seconds)))
    return tuple(out)


def _trusted_proxies(raw: str | None) -> int:
    if raw in (None, ""):
        return 0
    if not digits(raw.strip()) or int(raw) > 5:
        raise ConfigError(f"TRUSTED_PROXIES: the number of proxies in front of the service (0 to 5), not {raw!r}")
    return int(raw)
