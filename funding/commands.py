"""What every ``funding …`` command is made of: the root group, the ``command`` decorator,
the context a command works in, and the helpers its output goes through.

Domains register their own commands (``funding/<domain>/cli.py``) on ``root`` or on a group of
their own; ``funding.cli`` is the entry point that loads them all. The decorator is the command
line's one edge: it loads the settings, checks ``--as`` against the roles the command declares,
runs the command, and turns whatever refusal escapes it into one line on stderr:

- a :class:`funding.settings.ConfigError`: ``configuration error: …``, exit 2;
- any other :class:`funding.errors.FundingError`: ``error: …``, exit 1;
- anything else is a bug: ``unexpected error: …`` without a stack trace (FUNDING_DEBUG=1 shows it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import functools
import inspect
import os
from collections.abc import Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from funding.errors import FundingError
from funding.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from funding.scoping import OrgScope

# The roles a command may ask of the ``--as`` person (``roles=`` of :func:`command`).
ADMIN = ("admin",)
STAFF = ("admin", "staff")
BOOKS = ("admin", "staff", "accountant")
EXPORTERS = ("admin", "accountant")


class CommandError(FundingError):
    """A command refused on the command line itself (a missing file, a bad date); printed as is."""


@dataclass
class Context:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]  # from funding.sessions.sessions_for
    actor: str = ""  # who acts: the ``--as`` person, else the operator's login (see who())
    scope: OrgScope | None = None  # the ``--as`` person's organisations, None for the operator

    def check_network(self, network: bool) -> None:
        """A role over the whole network is given by the operator or a network admin only."""
        if network and self.scope is not None and not self.scope.everything:
            raise CommandError("only the operator or an admin of the whole network gives a network role")


_actor: ContextVar[str] = ContextVar("actor", default="")


def acting_as() -> str:
    """The ``--as`` person's e-mail, or "" when the operator runs the command."""
    return _actor.get()


def who() -> str:
    """Who acts, for the records' ``created_by``: the ``--as`` person, else the operator's login."""
    return acting_as() or os.environ.get("USER", "cli")


def choice(values: type[enum.StrEnum]) -> click.Choice[str]:
    """An option taking one of an enum's values, as they are written (``fec``, not ``FEC``)."""
    return click.Choice([member.value for member in values])


def out(text: str = "") -> None:
    """One line of the command's output, on stdout."""
    click.echo(text)


def parse_day(text: str | None) -> dt.date | None:
    """An optional YYYY-MM-DD option, refused in one line when it is not a date."""
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"invalid date {text!r} (YYYY-MM-DD)") from None


async def read_file(name: str) -> bytes:
    """A file named on the command line, read off the event loop; a missing one is refused in one line."""
    return await asyncio.to_thread(_read_file, name)


def _read_file(name: str) -> bytes:
    path = Path(name)
    if not path.is_file():
        raise CommandError(f"no such file: {name}")
    return path.read_bytes()


def exclusive(**given: object) -> None:
    """Refuse, as a usage error, two options given together that exclude each other."""
    named = [f"--{name.replace('_', '-')}" for name, value in given.items() if value not in (None, False)]
    if len(named) > 1:
        raise click.UsageError(f"argument {named[1]}: not allowed with argument {named[0]}")


@asynccontextmanager
async def stripe_gateway(settings: Settings):
    """The Stripe gateway for one command; what Stripe refuses reads ``Stripe: …``."""
    from funding.stripe_gateway import GatewayError, StripeGateway

    gateway = StripeGateway(settings)
    try:
        yield gateway
    except GatewayError as exc:
        raise CommandError(f"Stripe: {exc}") from None
    finally:
        await gateway.aclose()


@asynccontextmanager
async def open_context(settings: Settings, *, as_email: str | None = None, roles: tuple[str, ...] = ()):
    """The command's engine and sessions; with ``as_email``, sessions walled to that person's
    organisations where they hold one of ``roles``."""
    from funding.db import create_engine
    from funding.sessions import sessions_for

    engine = create_engine(settings.database_url)
    try:
        scope = await _scope_of(engine, as_email, roles) if as_email is not None else None
        yield Context(settings, engine, sessions_for(engine, settings, scope=scope), who(), scope)
    finally:
        await engine.dispose()


async def _scope_of(engine: AsyncEngine, email: str, roles: tuple[str, ...]) -> OrgScope:
    from sqlalchemy import select

    from funding.auth.models import User
    from funding.auth.service import AuthError, grants_of, normalise_email
    from funding.db import session_factory
    from funding.scoping import OrgScope

    try:
        email = normalise_email(email)
    except AuthError as exc:
        raise CommandError(f"--as: {exc}") from None
    async with session_factory(engine)() as session:
        user = await session.scalar(select(User).where(User.email == email, User.active))
        if user is None:
            raise CommandError(f"--as: no active user {email}")
        grants = await grants_of(session, user.id)
    if any(org is None and role in roles for org, role in grants):
        return OrgScope(None, user.id)
    orgs = frozenset(org for org, role in grants if org is not None and role in roles)
    if not orgs:
        raise CommandError(f"--as: {email} holds none of the roles {', '.join(roles)} in any organisation")
    return OrgScope(orgs, user.id)


class Group(click.Group):
    """A group that lists its commands in the order they were registered and names the
    choices when given an unknown one."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            ctx.fail(f"argument COMMAND: invalid choice: {name!r} (choose from {', '.join(self.list_commands(ctx))})")
        return super().resolve_command(ctx, args)


@click.group(cls=Group, name="funding", help="Entre-Lab Funding: the money service of the tiers-lieux.")
@click.option("--as", "as_email", metavar="EMAIL",
              help="act as this person: only the organisations where they hold the role the command needs")
@click.pass_context
def root(ctx: click.Context, as_email: str | None) -> None:
    ctx.obj = as_email


def group(parent: click.Group, name: str, *, help: str) -> Group:
    """A group of commands under ``parent`` (``funding ledger …``)."""
    sub = click.group(name, cls=Group, help=help)(lambda: None)
    parent.add_command(sub)
    return sub


def command(parent: click.Group, name: str, *, help: str, roles: tuple[str, ...] | None = None,
            serving: bool = False, development: bool = False) -> Callable:
    """Register the decorated function as ``parent``'s command ``name``.

    An ``async def f(ctx: Context, **options)`` works on the organisations' data: ``roles`` are
    those ``--as`` needs (one of them, in each organisation it sees); without ``roles`` the
    command acts on the installation and only the operator runs it. A plain ``def
    f(settings, **options)`` acts on the installation (schema, processes, keys), never ``--as``.
    ``serving`` commands need the web's settings (they send links, call Stripe);
    ``development`` ones are development tools, refused in production.
    The function returns the exit code (None is 0).
    """

    def decorate(fn: Callable) -> click.Command:
        in_context = inspect.iscoroutinefunction(fn)
        if roles and not in_context:
            raise TypeError(f"{name}: only a command on the organisations' data (async, with a Context) takes roles")

        @functools.wraps(fn)
        def callback(**options):
            ctx = click.get_current_context()
            names, at = [], ctx
            while at.parent is not None:  # "ledger verify", whatever the program is called
                names.append(at.info_name)
                at = at.parent
            path = " ".join(reversed(names))
            code = _run(fn, options, path=path, as_email=ctx.find_root().obj, in_context=in_context, roles=roles,
                        serving=serving, development=development)
            if code:
                ctx.exit(code)

        return parent.command(name, help=help)(callback)

    return decorate


def _run(fn: Callable, options: dict, *, path: str, as_email: str | None, in_context: bool,
         roles: tuple[str, ...] | None, serving: bool, development: bool) -> int:
    """Run one command; every refusal it raises becomes one line here, and only here."""
    try:
        if development:
            if os.environ.get("FUNDING_ENV") == "production":
                raise CommandError(f"funding {path} is a development tool: unset FUNDING_ENV=production")
            settings = load_settings(serving=serving, FUNDING_ENV="development")
        else:
            settings = load_settings(serving=serving)
        if as_email is not None and not in_context:
            raise CommandError(f"`{path}` acts on the installation: the operator runs it, without --as")
        if as_email is not None and roles is None:
            raise CommandError(f"`{path}` acts on the installation, not on an organisation's data: "
                               "the operator runs it, without --as")
        if not in_context:
            return fn(settings, **options) or 0

        async def run() -> int:
            async with open_context(settings, as_email=as_email, roles=roles or ()) as ctx:
                return await fn(ctx, **options) or 0

        token = _actor.set(as_email or "")
        try:
            return asyncio.run(run())
        finally:
            _actor.reset(token)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        return exc.exit_code
    except FundingError as exc:  # every refusal, whatever its domain: one line
        click.echo(f"error: {exc}", err=True)
        return 1
    except KeyboardInterrupt:
        return 130
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise  # click's own answers (a usage error) print themselves
    except Exception as exc:  # never a stack trace for the person at the terminal
        if os.environ.get("FUNDING_DEBUG"):
            raise
        click.echo(f"unexpected error: {type(exc).__name__}: {exc} (FUNDING_DEBUG=1 shows details)", err=True)
        return 1
