"""Turning validation failures into :class:`ConfigError`\\ s that name the key path.

Pydantic reports *where* (a location tuple) and *what* (an error type); users need a
dotted key path they can find in their YAML, a sentence they can act on, and for
typos the key or value they probably meant. All problems are kept
(:attr:`ConfigProblems.problems`); the exception reads as the first one plus a count,
so a log line stays one line.
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pydantic
from pydantic import BaseModel

from astrocyte.config.suggest import hint
from astrocyte.errors import ConfigError


def key_path(parts: Sequence[str | int]) -> str:
    """``("agents", "bot", "allowed_banks", 0)`` -> ``agents.bot.allowed_banks[0]``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


class ConfigProblems(ConfigError):
    """One or more configuration problems.

    Reads (``str()``, ``key``, ``fix``) as the first problem with ``(and N more
    problems)`` appended; :attr:`problems` lists every one, e.g. for
    ``astrocyte config validate`` to print them all.
    """

    def __init__(self, problems: Sequence[ConfigError]) -> None:
        if not problems:
            raise ValueError("ConfigProblems needs at least one problem")
        self.problems: list[ConfigError] = list(problems)
        first = self.problems[0]
        message = detail(first)
        more = len(self.problems) - 1
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        super().__init__(first.key, message, fix=first.fix)


def detail(error: ConfigError) -> str:
    """A ConfigError's message without the ``config <key>: `` prefix it renders with."""
    return error.message.removeprefix(f"config {error.key}: ")


def from_validation_error(exc: pydantic.ValidationError, root: type[BaseModel]) -> ConfigProblems:
    """Every error in ``exc`` as a :class:`ConfigError`, wrapped in one
    :class:`ConfigProblems`. ``root`` is the model that was validated; it is walked to
    suggest the key or value that was probably meant."""
    problems = [_convert(error, root) for error in exc.errors()]
    return ConfigProblems(problems)


def _convert(error: Any, root: type[BaseModel]) -> ConfigError:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    kind: str = error["type"]
    value = error.get("input")
    message = _plain_message(error["msg"])

    if loc and loc[-1] == "[key]":
        # A mapping key failed its own type (e.g. recall.weights.semantc).
        container = loc[:-2]
        bad = loc[-2]
        choices = [str(v) for v in _literal_values(_key_type(root, container))]
        return ConfigError(
            key_path(loc[:-1]),
            f"{bad!r} is not a valid key here" + hint(str(bad), choices),
            fix=None if choices else message,
        )
    key = key_path(loc)
    if kind == "extra_forbidden":
        name = str(loc[-1])
        choices = _field_names(root, loc[:-1])
        suggestion = hint(name, choices)
        return ConfigError(
            key,
            "unknown key" + suggestion,
            fix=None
            if "did you mean" in suggestion
            else "remove it, or see docs/configuration.md for the keys of this section",
        )
    if kind == "missing":
        return ConfigError(key, "is required", fix="add it")
    if kind in ("literal_error", "enum"):
        allowed: list[Any] = _literal_values(_type_at(root, loc)) or _quoted(error.get("ctx", {}))
        if not allowed:
            return ConfigError(key, message)
        suggestion = hint(str(value), [str(a) for a in allowed], listing=False)
        return ConfigError(key, f"{value!r} is not one of {_join(allowed)}" + suggestion)
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return ConfigError(
            key,
            f"must be a mapping of settings, got {_describe(value)}",
            fix="write it as 'key: value' lines indented under it",
        )
    if kind in ("list_type", "tuple_type", "set_type"):
        return ConfigError(
            key, f"must be a list, got {_describe(value)}", fix="write it as [a, b] or '- a' lines"
        )
    if value is not None and not isinstance(value, Mapping | list):
        message += f" (got {value!r})"
    return ConfigError(key, message)


def _plain_message(msg: str) -> str:
    # Pydantic speaks about "Input"; a config user thinks about "the value".
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    msg = re.sub(r"^Input should be", "must be", msg)
    msg = re.sub(r"^Input", "value", msg)
    return msg[:1].lower() + msg[1:] if msg[:1].isupper() and not msg[1:2].isupper() else msg


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, str | int | float | bool):
        return f"{type(value).__name__} {value!r}"
    return type(value).__name__


def _join(choices: Sequence[Any]) -> str:
    return ", ".join(repr(c) for c in choices)


def _quoted(ctx: Mapping[str, Any]) -> list[str]:
    return re.findall(r"'([^']*)'", str(ctx.get("expected", "")))


# --- walking the schema along an error location -------------------------------------


def _unwrap(tp: Any) -> list[Any]:
    """The alternatives of ``tp``: Optional/Union members, Annotated stripped."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _unwrap(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        out: list[Any] = []
        for arg in get_args(tp):
            if arg is not type(None):
                out.extend(_unwrap(arg))
        return out
    return [tp]


def _is_model(tp: Any) -> bool:
    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def _step(tp: Any, part: str | int) -> list[Any]:
    out: list[Any] = []
    for alt in _unwrap(tp):
        origin = get_origin(alt)
        if _is_model(alt):
            for name, info in alt.model_fields.items():
                if part in (name, info.alias):
                    out.append(info.annotation)
        elif origin in (list, tuple, set, frozenset, Sequence) and isinstance(part, int):
            args = get_args(alt)
            if args:
                out.append(args[0])
        elif origin in (dict, Mapping):
            args = get_args(alt)
            if len(args) == 2:
                out.append(args[1])
    return out


def _types_at(root: type[BaseModel], loc: Sequence[str | int]) -> list[Any]:
    current: list[Any] = [root]
    for part in loc:
        current = [nxt for tp in current for nxt in _step(tp, part)]
        if not current:
            break
    return current


def _type_at(root: type[BaseModel], loc: Sequence[str | int]) -> Any:
    found = _types_at(root, loc)
    return found[0] if found else None


def _field_names(root: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    names: list[str] = []
    for tp in _types_at(root, loc):
        for alt in _unwrap(tp):
            if _is_model(alt):
                for name, info in alt.model_fields.items():
                    names.append(info.alias or name)
    return names


def _key_type(root: type[BaseModel], loc: Sequence[str | int]) -> Any:
    for tp in _types_at(root, loc):
        for alt in _unwrap(tp):
            if get_origin(alt) in (dict, Mapping):
                args = get_args(alt)
                if len(args) == 2:
                    return args[0]
    return None


def _literal_values(tp: Any) -> list[Any]:
    values: list[Any] = []
    if tp is None:
        return values
    for alt in _unwrap(tp):
        if get_origin(alt) is Literal:
            values.extend(get_args(alt))
        elif get_origin(alt) in (list, tuple, set, frozenset, Sequence):
            args = get_args(alt)
            if args:
                values.extend(_literal_values(args[0]))
    return values
