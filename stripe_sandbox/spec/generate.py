"""Write ``endive.json``: the request parameters of every (method, path) the sandbox serves,
from stripe-python's typed ``*Params`` for the pinned API version (never a hand-written list).

Run by hand after upgrading stripe-python: ``python -m stripe_sandbox.spec.generate``.
A test checks the committed file is what this produces from the installed stripe.

Schema nodes (compact JSON):
  "string" | "integer" | "boolean" | "number" | "decimal" | "any"
  {"enum": [...]}                       a Literal (``""`` in it means "may be unset")
  {"hash": {name: node}, "required": [...]}   a nested TypedDict
  {"list": node}                        a List[...]
  {"map": node}                         free keys (metadata: Dict[str, str])
  {"union": [node, ...]}
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import re
import sys
import typing
from pathlib import Path
from typing import Any

import typing_extensions

OUT = Path(__file__).with_name("endive.json")

_PLACEHOLDER = re.compile(r"\{\w+\}")


def _services() -> dict[tuple[str, str], tuple[str, str]]:
    """(METHOD, path with ``{}`` placeholders) -> (params module, params class), read from the
    ``_request("post", "/v1/...", params=params)`` calls of stripe-python's services."""
    import stripe

    found: dict[tuple[str, str], tuple[str, str]] = {}
    for info in pkgutil.walk_packages(stripe.__path__, "stripe."):
        if not info.name.endswith("_service") or ".v2." in info.name:
            continue
        module = importlib.import_module(info.name)
        tree = ast.parse(inspect.getsource(module))
        imports = {alias.asname or alias.name: node.module for node in ast.walk(tree)
                   if isinstance(node, ast.ImportFrom) and node.module for alias in node.names}
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef):
                continue
            params_class = None
            for arg in func.args.args:
                if arg.arg == "params" and arg.annotation is not None:
                    names = [n.value for n in ast.walk(arg.annotation) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
                    params_class = names[0] if names else None
            if params_class is None or params_class not in imports:
                continue
            for call in ast.walk(func):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "_request"):
                    continue
                verb, target = call.args[0], call.args[1]
                if isinstance(target, ast.Call) and isinstance(target.func, ast.Attribute):
                    target = target.func.value  # "/v1/x/{id}".format(...)
                if isinstance(verb, ast.Constant) and isinstance(target, ast.Constant) and isinstance(target.value, str) and isinstance(verb.value, str):
                    path = _PLACEHOLDER.sub("{}", target.value)
                    found[(verb.value.upper(), path)] = (imports[params_class], params_class)
    return found


def _node(tp: Any, seen: tuple[Any, ...]) -> Any:
    origin = typing_extensions.get_origin(tp)
    args = typing_extensions.get_args(tp)
    if origin in (typing_extensions.NotRequired, typing_extensions.Required):
        return _node(args[0], seen)
    if tp is str:
        return "string"
    if tp is bool:
        return "boolean"
    if tp is int:
        return "integer"
    if tp is float:
        return "number"
    if getattr(tp, "__name__", "") == "Decimal":
        return "decimal"
    if origin is typing_extensions.Literal or origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, __import__("types").UnionType):
        nodes = [_node(a, seen) for a in args if a is not type(None)]
        enums = [v for n in nodes if isinstance(n, dict) and set(n) == {"enum"} for v in n["enum"]]
        others = [n for n in nodes if not (isinstance(n, dict) and set(n) == {"enum"})]
        if any(v != "" for v in enums) and "string" in others:
            others.remove("string")  # `Literal[...]|str`: the client's leeway for future values; the API checks the enum
        merged = ([{"enum": enums}] if enums else []) + [n for i, n in enumerate(others) if n not in others[:i]]
        return merged[0] if len(merged) == 1 else {"union": merged}
    if origin in (list, list):
        return {"list": _node(args[0], seen)}
    if origin in (dict, dict) or getattr(origin, "__name__", "") == "UntypedStripeObject" or getattr(tp, "__name__", "") == "UntypedStripeObject":
        return {"map": _node(args[-1], seen) if args else "any"}
    if typing_extensions.is_typeddict(tp):
        if tp in seen:  # a recursive type: accept anything below
            return "any"
        return _hash(tp, (*seen, tp))
    if tp is Any:
        return "any"
    raise TypeError(f"unhandled type {tp!r}")


def _hash(cls: Any, seen: tuple[Any, ...] = ()) -> dict[str, Any]:
    from stripe._request_options import RequestOptions

    module = sys.modules[cls.__module__]
    from stripe._stripe_context import StripeContext

    names = {"StripeContext": StripeContext, "Mapping": typing.Mapping, "Optional": typing.Optional}  # RequestOptions' own
    hints = typing_extensions.get_type_hints(cls, vars(module), names, include_extras=True)
    options = set(RequestOptions.__annotations__) if issubclass_typeddict(cls, RequestOptions) else set()
    fields = {name: _node(tp, seen) for name, tp in sorted(hints.items()) if name not in options}
    required = sorted(k for k in getattr(cls, "__required_keys__", ()) if k not in options)
    return {"hash": fields, "required": required}


def issubclass_typeddict(cls: Any, base: Any) -> bool:
    return base in getattr(cls, "__orig_bases__", ()) or any(issubclass_typeddict(b, base) for b in getattr(cls, "__orig_bases__", ()) if b is not cls)


def sandbox_routes() -> list[tuple[str, str]]:
    """(METHOD, path with ``{}``) of every /v1 route the sandbox serves."""
    from stripe_sandbox.api import ROUTES
    from stripe_sandbox.app import create_sandbox_app  # noqa: F401  (registers every route module)

    routes = set()
    for r in ROUTES:
        path = re.sub(r"\(\?P<\w+>\[\^/\]\+\)", "{}", r.pattern.pattern.strip("^$"))
        routes.add((r.method, path))
    return sorted(routes)


def build() -> dict[str, Any]:
    import stripe

    services = _services()
    endpoints: dict[str, Any] = {}
    unknown: list[str] = []
    for method, path in sandbox_routes():
        source = services.get((method, path))
        if source is None:
            unknown.append(f"{method} {path}")
            continue
        cls = getattr(importlib.import_module(source[0]), source[1])
        endpoints[f"{method} {path}"] = _hash(cls)
    return {
        "api_version": stripe.api_version,
        "source": f"stripe-python {stripe.VERSION} typed *Params",
        "endpoints": endpoints,
        "not_in_stripe": unknown,  # served by the sandbox, unknown to stripe-python: not validated
    }


def render() -> str:
    return json.dumps(build(), sort_keys=True, separators=(",", ":")) + "\n"


def main() -> None:
    OUT.write_text(render(), encoding="utf-8")
    data = json.loads(OUT.read_text(encoding="utf-8"))
    print(f"{OUT}: {len(data['endpoints'])} endpoints; not in stripe-python: {data['not_in_stripe']}")


if __name__ == "__main__":
    main()
