"""How the product's modules depend on each other, read from the source (nothing is run): no
import cycle anywhere in `funding` and `webhooks`, no private name imported across modules,
``webhooks`` wired in by composition roots only, the entry point imported by nobody.

Imports under ``if TYPE_CHECKING:`` are not counted: they exist for the type checker only."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The modules of `funding` that may import `webhooks`: they put the application together.
COMPOSITION_ROOTS = {"funding.app", "funding.worker", "funding.cli"}
# The modules that may import the offline Stripe sandbox (`stripe_sandbox`, a sibling package):
# the demo's composition of product and sandbox, and each domain's demo activity, which pays on
# its hosted pages. Nothing else of `funding`, and nothing of `webhooks` (issue 16).
SANDBOX_USERS = {"funding.demo.compose", "funding.bar.demo", "funding.campaigns.demo", "funding.coworking.demo",
                 "funding.donations.demo"}
# ... and the modules that may import those: the demo command and its runner.
DEMO = SANDBOX_USERS | {"funding.demo.run"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted([*ROOT.glob("funding/**/*.py"), *ROOT.glob("webhooks/**/*.py")]):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()
COMMAND_LINE = {"funding.commands", "funding.cli", "webhooks.cli"} | {m for m in MODULES if m.startswith("funding.")
                                                                     and m.endswith(".cli")}


def _owner(name: str) -> str | None:
    """The module of ours that ``name`` (a module, or a name in one) lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, str | None]]:
    """(module, name) for every import of ``module`` that runs, at its top or inside a function."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for inner in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.append((submodule, None) if submodule in MODULES else (base, alias.name))
    return found


def _graph() -> dict[str, set[str]]:
    graph = {module: set() for module in MODULES}
    for module in MODULES:
        for target, _ in _imports(module):
            owner = _owner(target)
            if owner and owner != module:
                graph[module].add(owner)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index, low, stack, on_stack, components, counter = {}, {}, [], set(), [], 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(component)
    return components


def test_the_cycle_finder_finds_a_cycle():
    assert [sorted(c) for c in _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})] == [["a", "b", "c"]]


def test_no_module_of_the_product_is_in_an_import_cycle():
    assert "funding.ledger.cli" in COMMAND_LINE and "funding.bar.cli" in COMMAND_LINE
    assert [sorted(c) for c in _cycles(_graph())] == []


def test_nothing_imports_the_entry_point():
    """`funding.cli` is what runs (`python -m funding.cli` too): imported by nobody, it is never
    loaded twice, as `__main__` and as itself."""
    assert [m for m, targets in _graph().items() if "funding.cli" in targets] == []


def test_no_module_imports_a_private_name_from_another():
    crossing = [(module, target, name) for module in MODULES for target, name in _imports(module)
                if name and name.startswith("_") and not name.startswith("__") and _owner(target) not in (None, module)]
    assert crossing == []


def test_funding_imports_webhooks_only_where_the_application_is_put_together():
    reaching = sorted({module for module in MODULES if module.startswith("funding")
                       for target, _ in _imports(module) if (_owner(target) or "").startswith("webhooks")})
    assert set(reaching) <= COMPOSITION_ROOTS, reaching


def _imports_sandbox(module: str) -> bool:
    return any(target == "stripe_sandbox" or target.startswith("stripe_sandbox.") for target, _ in _imports(module))


def test_only_the_demo_imports_the_stripe_sandbox():
    assert {m for m in MODULES if _imports_sandbox(m)} == SANDBOX_USERS
    assert all(m.startswith("funding.demo.") or m.endswith(".demo") for m in SANDBOX_USERS)  # demo code, by its name


def test_the_product_reaches_the_sandbox_through_no_demo_module():
    reaching = sorted((module, owner) for module in MODULES if module not in DEMO
                      for target, _ in _imports(module) if (owner := _owner(target)) in SANDBOX_USERS)
    assert reaching == []


def test_the_rule_sees_a_sandbox_import(tmp_path, monkeypatch):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("def f():\n    from stripe_sandbox.visitor import pay\n    return pay\n", encoding="utf-8")
    monkeypatch.setitem(MODULES, "funding.sneaky", sneaky)
    assert _imports_sandbox("funding.sneaky")
