"""Refuse what Stripe refuses for the API version the sandbox serves: every /v1 request's
parameters are checked, before dispatch, against ``spec/endive.json`` (generated from
stripe-python's typed ``*Params``, see ``spec/generate.py``).

An unknown parameter answers 400 ``parameter_unknown``; a value of the wrong type or outside
its enum answers 400 ``parameter_invalid_integer`` / ``parameter_invalid_string`` /
``parameter_invalid_boolean`` / ``parameter_invalid_empty`` or ``invalid_request_error`` with
``param``, worded as Stripe words them. Sandbox-only endpoints (``/_admin/*``, the hosted
pages) are not part of Stripe's API and are not checked here; /v1 paths stripe-python does not
know are listed in the data's ``not_in_stripe`` and pass unchecked."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from stripe_sandbox.errors import StripeError

# Every refusal in this process, whatever the sandbox (tests watch it: see tests/support/refusals.py).
REFUSED: list[dict[str, Any]] = []

SPEC = Path(__file__).with_name("spec") / "endive.json"


@functools.cache
def spec() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SPEC.read_text(encoding="utf-8"))
    return data


@functools.cache
def _patterns() -> list[tuple[re.Pattern[str], str]]:
    """Literal paths first, so ``/v1/invoices/search`` is not read as ``/v1/invoices/{}``."""
    keys = sorted(spec()["endpoints"], key=lambda k: (k.count("{}"), -len(k)))
    return [(re.compile("^" + re.escape(k).replace(r"\{\}", "[^/]+") + "$"), k) for k in keys]


def endpoint(method: str, path: str) -> dict[str, Any] | None:
    for pattern, key in _patterns():
        if pattern.match(f"{method} {path}"):
            node: dict[str, Any] = spec()["endpoints"][key]
            return node
    return None


def unknown(param: str) -> StripeError:
    return StripeError(400, f"Received unknown parameter: {param}", param=param, code="parameter_unknown")


def check(method: str, path: str, params: dict[str, Any]) -> None:
    """Raise the StripeError Stripe would answer, or return if the request's parameters are valid."""
    schema = endpoint(method, path)
    if schema is None:
        return
    _hash(schema, params, "")


def _name(prefix: str, key: str) -> str:
    return f"{prefix}[{key}]" if prefix else key


def _hash(schema: dict[str, Any], value: dict[str, Any], prefix: str) -> None:
    fields = schema["hash"]
    for key, item in value.items():
        if key not in fields:
            raise unknown(_name(prefix, key))
        _value(fields[key], item, _name(prefix, key))


def _value(node: Any, value: Any, name: str) -> None:
    if node == "any":
        return
    if isinstance(node, dict) and "union" in node:
        errors = []
        for option in node["union"]:
            try:
                _value(option, value, name)
                return
            except StripeError as exc:
                errors.append(exc)
        # the most telling refusal: an unknown key deep in a hash beats "not a string"
        raise next((e for e in errors if e.code == "parameter_unknown"), errors[0])
    if isinstance(node, dict) and "enum" in node:
        if not isinstance(value, str) or value not in [str(v).lower() if isinstance(v, bool) else str(v) for v in node["enum"]]:
            shown = ", ".join(repr(v) for v in node["enum"] if v != "")
            raise StripeError(400, f"Invalid {name}: must be one of {shown}", param=name, code="parameter_invalid")
        return
    if isinstance(node, dict) and "hash" in node:
        if value == "":
            return  # an empty value unsets a hash
        if not isinstance(value, dict):
            raise StripeError(400, f"Invalid {name}: must be an object", param=name)
        _hash(node, value, name)
        return
    if isinstance(node, dict) and "map" in node:
        if value == "":
            return
        if not isinstance(value, dict):
            raise StripeError(400, f"Invalid {name}: must be an object", param=name)
        for key, item in value.items():
            _value(node["map"], item, _name(name, key))
        return
    if isinstance(node, dict) and "list" in node:
        if value == "":
            return  # an empty value clears a list
        items = value if isinstance(value, list) else None
        if items is None:
            raise StripeError(400, f"Invalid array: {name}", param=name)
        for index, item in enumerate(items):
            _value(node["list"], item, f"{name}[{index}]")
        return
    if not isinstance(value, str):
        raise StripeError(400, f"Invalid {name}: must be a {node}", param=name)
    if value == "":
        return  # a blank scalar: unset, or missing where required (the endpoint says which)
    if node == "integer" and not re.fullmatch(r"-?\d+", value):
        raise StripeError(400, f"Invalid integer: {value}", param=name, code="parameter_invalid_integer")
    if node == "boolean" and value not in ("true", "false"):
        raise StripeError(400, f"Invalid boolean: {value}", param=name)
    if node in ("number", "decimal") and not re.fullmatch(r"-?\d+(\.\d+)?", value):
        raise StripeError(400, f"Invalid decimal: {value}", param=name)
