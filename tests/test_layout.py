"""How the tests are laid out, read from the source (nothing is run): a test module never
imports another test module or a conftest. Helpers shared by several files live in
tests/support/<domain>.py; fixtures come through pytest (a conftest, or a plugin of
tests/support listed in the root conftest's ``pytest_plugins``)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _modules(tests: Path) -> dict[str, Path]:
    """Every module under ``tests`` by its dotted name (``tests.bar.test_cli``)."""
    found = {}
    for path in sorted(tests.rglob("*.py")):
        parts = [tests.name, *path.relative_to(tests).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_test_or_conftest(module: str) -> bool:
    last = module.rpartition(".")[2]
    return last.startswith("test_") or last == "conftest"


def _imported(module: str, path: Path) -> set[str]:
    """The dotted names ``path`` imports (each ``from X import Y`` gives X and X.Y; relative
    imports resolved), and the modules its ``pytest_plugins`` names."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in node.targets):
            found |= {c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    return found


def imports_of_test_modules(tests: Path) -> list[tuple[str, str]]:
    """(file, module) for every import under ``tests`` of a test module or a conftest of ``tests``."""
    modules = _modules(tests)
    forbidden = {name for name in modules if _is_test_or_conftest(name)}
    return sorted((f"{tests.name}/{path.relative_to(tests)}", imported)
                  for name, path in modules.items() for imported in _imported(name, path) & forbidden)


def test_no_test_imports_a_test_module_or_a_conftest():
    found = set(imports_of_test_modules(TESTS))
    assert sorted(found) == [], "import the helper from tests/support/<domain>.py instead"


def test_the_rule_sees_absolute_relative_and_plugin_imports(tmp_path):
    tests = tmp_path / "tests"
    (tests / "bar").mkdir(parents=True)
    (tests / "support").mkdir()
    for name in ("__init__", "conftest", "test_top", "bar/__init__", "bar/conftest", "bar/test_cli", "support/__init__",
                 "support/bar"):
        (tests / f"{name}.py").write_text("")
    (tests / "bar" / "test_a.py").write_text("from tests.bar.test_cli import x\nfrom .conftest import y\n")
    (tests / "bar" / "test_b.py").write_text("from . import test_cli\nfrom .. import conftest\nimport tests.test_top\n")
    (tests / "bar" / "test_c.py").write_text("from tests.support.bar import sell\nfrom tests.bar import helpers\n")
    (tests / "support" / "cli.py").write_text("from tests.conftest import KEY\npytest_plugins = ['tests.bar.conftest']\n")
    assert imports_of_test_modules(tests) == [
        ("tests/bar/test_a.py", "tests.bar.conftest"),
        ("tests/bar/test_a.py", "tests.bar.test_cli"),
        ("tests/bar/test_b.py", "tests.bar.test_cli"),
        ("tests/bar/test_b.py", "tests.conftest"),
        ("tests/bar/test_b.py", "tests.test_top"),
        ("tests/support/cli.py", "tests.bar.conftest"),
        ("tests/support/cli.py", "tests.conftest"),
    ]
