"""Stripe's form encoding (``a[b][0][c]=v``, ``expand[]=x``) and typed parameter access."""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterable
from typing import Any, Literal, overload

from stripe_sandbox.errors import invalid, missing_param

_BRACKETS = re.compile(r"\[([^\[\]]*)\]")
_HEAD = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def decode_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Decode form pairs into nested dicts and lists (dicts with only integer keys become lists)."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _HEAD.match(key)
        parts = [match.group(1), *_BRACKETS.findall(match.group(2))] if match else [key]
        node = root
        for index, part in enumerate(parts):
            if part == "":
                part = str(len(node))
            if index == len(parts) - 1:
                if isinstance(node.get(part), dict):
                    raise invalid(f"Invalid value for {key}: it is also used as a hash.", key)
                node[part] = value
            else:
                child = node.get(part)
                if child is None or child == "":
                    child = node[part] = {}
                elif not isinstance(child, dict):
                    raise invalid(f"Invalid value for {key}: {parts[0]} is not a hash.", key)
                node = child
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


class Params:
    """Typed, Stripe-worded access to decoded parameters (``p.int("amount", required=True)``)."""

    def __init__(self, data: dict[str, Any], prefix: str = ""):
        self.data = data
        self.prefix = prefix

    def _name(self, key: str) -> str:
        return f"{self.prefix}[{key}]" if self.prefix else key

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    # The accessors are named after the types they return (``p.str``, ``p.int``...), which shadows
    # the builtins inside this class: its annotations spell them ``builtins.str`` and so on.
    # Overloads: ``required=True`` or a non-None ``default`` means the answer is never None.
    @overload
    def str(
        self, key: builtins.str, *,
        required: Literal[True], default: builtins.str | None = ..., choices: Iterable[builtins.str] | None = ...,
    ) -> builtins.str: ...
    @overload
    def str(
        self, key: builtins.str, *,
        required: builtins.bool = ..., default: builtins.str, choices: Iterable[builtins.str] | None = ...,
    ) -> builtins.str: ...
    @overload
    def str(
        self, key: builtins.str, *,
        required: builtins.bool = ..., default: None = ..., choices: Iterable[builtins.str] | None = ...,
    ) -> builtins.str | None: ...
    def str(
        self, key: builtins.str, *,
        required: builtins.bool = False, default: builtins.str | None = None, choices: Iterable[builtins.str] | None = None,
    ) -> builtins.str | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise missing_param(self._name(key))
            return default
        if not isinstance(value, str):
            raise invalid(f"Invalid string: {self._name(key)}", self._name(key))
        if choices is not None and value not in choices:
            allowed = ", ".join(sorted(choices))
            raise invalid(f"Invalid {self._name(key)}: must be one of {allowed}", self._name(key))
        return value

    @overload
    def int(
        self, key: builtins.str, *,
        required: Literal[True], default: builtins.int | None = ..., minimum: builtins.int | None = ...,
    ) -> builtins.int: ...
    @overload
    def int(
        self, key: builtins.str, *,
        required: builtins.bool = ..., default: builtins.int, minimum: builtins.int | None = ...,
    ) -> builtins.int: ...
    @overload
    def int(
        self, key: builtins.str, *,
        required: builtins.bool = ..., default: None = ..., minimum: builtins.int | None = ...,
    ) -> builtins.int | None: ...
    def int(
        self, key: builtins.str, *,
        required: builtins.bool = False, default: builtins.int | None = None, minimum: builtins.int | None = None,
    ) -> builtins.int | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise missing_param(self._name(key))
            return default
        if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value.strip()):
            raise invalid(f"Invalid integer: {value}", self._name(key))
        number = int(value)
        if minimum is not None and number < minimum:
            raise invalid(f"Invalid {self._name(key)}: must be at least {minimum}", self._name(key))
        return number

    @overload
    def bool(self, key: builtins.str, *, default: builtins.bool) -> builtins.bool: ...
    @overload
    def bool(self, key: builtins.str, *, default: None = ...) -> builtins.bool | None: ...
    def bool(self, key: builtins.str, *, default: builtins.bool | None = None) -> builtins.bool | None:
        value = self.data.get(key)
        if value is None or value == "":
            return default
        if value in ("true", "false"):
            return value == "true"
        raise invalid(f"Invalid boolean: {value}", self._name(key))

    def dict(self, key: builtins.str) -> Params:
        value = self.data.get(key)
        if value is None or value == "":
            return Params({}, self._name(key))
        if not isinstance(value, dict):
            raise invalid(f"Invalid hash: {self._name(key)}", self._name(key))
        return Params(value, self._name(key))

    def list(self, key: builtins.str) -> builtins.list[Any]:
        value = self.data.get(key)
        if value is None or value == "":
            return []
        if isinstance(value, dict) and not value:
            return []
        if not isinstance(value, list):
            raise invalid(f"Invalid array: {self._name(key)}", self._name(key))
        return value

    def dicts(self, key: builtins.str) -> builtins.list[Params]:
        out: builtins.list[Params] = []
        for index, item in enumerate(self.list(key)):
            name = f"{self._name(key)}[{index}]"
            if not isinstance(item, dict):
                raise invalid(f"Invalid hash: {name}", name)
            out.append(Params(item, name))
        return out

    def strings(self, key: builtins.str) -> builtins.list[builtins.str]:
        value = self.data.get(key)
        if isinstance(value, str) and value:
            return [value]
        items = self.list(key)
        if not all(isinstance(v, str) for v in items):
            raise invalid(f"Invalid array of strings: {self._name(key)}", self._name(key))
        return items

    def metadata(self, key: builtins.str = "metadata") -> builtins.dict[builtins.str, builtins.str] | None:
        """The metadata hash as sent (None when absent); ``metadata=`` means "clear all" (empty dict)."""
        if key not in self.data:
            return None
        value = self.data[key]
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise invalid(f"Invalid hash: {self._name(key)}", self._name(key))
        if len(value) > 50:
            raise invalid("Metadata can have at most 50 keys.", self._name(key))
        for k, v in value.items():
            if not isinstance(v, str):
                raise invalid(f"Invalid metadata value for {k}", f"{self._name(key)}[{k}]")
            if len(k) > 40 or len(v) > 500:
                raise invalid("Metadata keys are at most 40 characters and values at most 500.", f"{self._name(key)}[{k}]")
        return dict(value)

    def check_known(self, allowed: Iterable[builtins.str]) -> None:
        allowed = set(allowed) | {"expand"}
        for key in self.data:
            if key not in allowed:
                name = self._name(key)
                raise invalid(f"Received unknown parameter: {name} (not supported by the offline Stripe sandbox)", name)


def merge_metadata(current: dict[str, str], update: dict[str, str] | None) -> dict[str, str]:
    """Stripe's update semantics: keys merge, an empty value removes a key, an empty hash clears."""
    if update is None:
        return current
    if update == {}:
        return {}
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
