"""A route's path is typed once, where the route is declared: templates and views reach it by
its name (``path_for`` in templates; ``path_for``, ``redirect_to`` and ``absolute_url`` in
Python). These tests keep it so without a database."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from starlette.routing import Mount, Route

from funding.db import ROW_ID
from funding.payments.service import CHECKOUT_RETURN
from funding.settings import PROJECT_ROOT, load_settings
from funding.web import with_query
from tests.support.db import TEST_SEAL_KEY

TEMPLATES = PROJECT_ROOT / "templates"
# A quoted string that starts with a local path ("/admin…", not "//host" nor "/" alone), or a path
# glued to an expression: href="{{ base_url }}/campagnes/…".
TYPED_PATH = re.compile(r"""(?:["']|\}\})/[A-Za-z_]""")


def _where(path: Path, lineno: int, line: str) -> str:
    return f"{path.relative_to(PROJECT_ROOT)}:{lineno}: {line.strip()}"


def test_no_template_types_an_internal_path():
    typed = [_where(path, n, line)
             for path in sorted(TEMPLATES.rglob("*.html"))
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if TYPED_PATH.search(line)]
    assert typed == [], "use path_for(route name, …) instead of a typed path:\n" + "\n".join(typed)


def test_the_check_sees_a_typed_path():
    assert TYPED_PATH.search('<a href="/admin/ledger">') and TYPED_PATH.search("<form action='/login'>")
    assert TYPED_PATH.search('<a href="{{ base_url }}/campagnes/{{ c.slug }}">')
    assert TYPED_PATH.search('{% set action = "/admin/exports/download" %}')
    assert not TYPED_PATH.search('<a href="{{ path_for(\'journal\') }}">') and not TYPED_PATH.search('<a href="?page=2">')
    assert not TYPED_PATH.search('strftime("%d/%m/%Y")') and not TYPED_PATH.search('<a href="https://example.org/x">')


def _imports_starlette_routes(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.ImportFrom) and node.module == "starlette.routing"
               and any(alias.name in ("Route", "Mount") for alias in node.names) for node in ast.walk(tree))


def _declares_a_route(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("Route", "Mount")


def _routing_modules(*, sandbox: bool) -> list[tuple[Path, ast.Module]]:
    """The modules that declare routes; ``sandbox=False`` leaves out the offline Stripe sandbox,
    whose pages answer at Stripe's own addresses."""
    found = []
    for path in sorted((PROJECT_ROOT / "funding").rglob("*.py")) + sorted((PROJECT_ROOT / "webhooks").rglob("*.py")):
        if sandbox or "sandbox" not in path.relative_to(PROJECT_ROOT).parts:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if _imports_starlette_routes(tree):
                found.append((path, tree))
    return found


def test_every_route_is_declared_with_a_name():
    unnamed = [_where(path, node.lineno, ast.unparse(node)[:100])
               for path, tree in _routing_modules(sandbox=True)
               for node in ast.walk(tree)
               if _declares_a_route(node) and not any(keyword.arg == "name" for keyword in node.keywords)]
    assert unnamed == [], "give these routes a name=:\n" + "\n".join(unnamed)


def _views(tree: ast.Module):
    return [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_views_build_links_and_redirects_from_route_names():
    """Inside the functions of the modules that declare routes, no string starts with a local
    path: redirect_to(request, "journal"), not redirect("/admin/ledger")."""
    typed = []
    for path, tree in _routing_modules(sandbox=False):
        for function in _views(tree):
            body = function.body
            allowed = [body[0].value] if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else []
            allowed += [node.args[0] for node in ast.walk(function) if _declares_a_route(node) and node.args]
            for node in ast.walk(function):
                if (isinstance(node, ast.Constant) and isinstance(node.value, str) and re.match(r"/[A-Za-z_]", node.value)
                        and not any(node is a for a in allowed)):
                    typed.append(_where(path, node.lineno, repr(node.value)))
    assert typed == [], "use path_for / redirect_to / absolute_url with the route's name:\n" + "\n".join(typed)


def _all_routes(routes, names: str = "", paths: str = ""):
    """(name, route, path of its mount) of every route, those of mounted applications included."""
    for route in routes:
        if isinstance(route, Mount) and route.routes:  # an unnamed mount (the product in the demo's composition) adds no prefix
            yield from _all_routes(route.routes, f"{names}{route.name}:" if route.name else names, paths + route.path)
        elif isinstance(route, (Route, Mount)):
            yield names + route.name, route, paths


def test_every_name_leads_to_its_own_route():
    """In the app as the demo and the tests serve it: the product, and the sandbox mounted beside it."""
    from funding.demo.compose import create_demo_app

    app = create_demo_app(load_settings({}, FUNDING_ENV="test", DATABASE_URL="sqlite+aiosqlite:///unused.db",
                                   SECRET_KEY="test-secret-key-0123456789", LEDGER_SEAL_KEY=TEST_SEAL_KEY))
    routes = list(_all_routes(app.routes))
    names = [name for name, _route, _mount in routes]
    assert len(routes) > 90 and any(name.startswith("sandbox:") for name in names)
    assert sorted({n for n in names if names.count(n) > 1}) == []
    for name, route, mount in routes:
        if isinstance(route, Mount):  # static files: a path inside
            assert app.url_path_for(name, path="x.css") == route.path + "/x.css"
            continue
        params = {key: 7 if convertor.regex in ("[0-9]+", ROW_ID) else "x" for key, convertor in route.param_convertors.items()}
        expected = mount + re.sub(r"\{(\w+)(?::\w+)?\}", lambda m, params=params: str(params[m.group(1)]), route.path)
        assert app.url_path_for(name, **params) == expected, name


@pytest.mark.parametrize("query, expected", [
    (None, "/login"),
    ({"next": "/membre"}, "/login?next=/membre"),
    ({"membre": None}, "/login"),
    ([("format", "fec"), ("from", "2026-01-01")], "/login?format=fec&from=2026-01-01"),
    ({"q": "Martine & Co"}, "/login?q=Martine+%26+Co"),
    ("org=1&annee=2026", "/login?org=1&annee=2026"),
    (CHECKOUT_RETURN, "/login?session_id={CHECKOUT_SESSION_ID}"),
])
def test_query_strings(query, expected):
    assert with_query("/login", query) == expected
