"""``${ENV_VAR}`` substitution in configuration values.

Rules (documented in docs/configuration.md):

* ``${NAME}`` is replaced by the environment variable ``NAME``; if it is not set the
  load fails with a :class:`~astrocyte.errors.ConfigError` naming the key that used it.
* ``${NAME:-default}`` uses ``default`` when ``NAME`` is unset *or empty* (shell
  semantics). The default is literal text: it cannot contain ``}`` or another ``${``.
* ``$${`` is an escaped, literal ``${`` (so ``$${HOME}`` stays ``${HOME}``).
* Substitution happens in every string value, anywhere in the string and at any depth
  (mappings and lists), but never in keys, and the result stays a string: pydantic
  then converts ``"8080"`` to an int where the schema wants one.

It runs exactly once, in the loader, on the raw YAML/mapping: a validated config holds
final values, so re-validating a dumped config never substitutes twice (which would
turn an escaped ``$${X}`` into a lookup of ``X``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from astrocyte.config.problems import ConfigProblems, key_path
from astrocyte.errors import ConfigError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Order matters: the escape must win over a reference that starts at its second "$".
_TOKEN = re.compile(r"\$\$\{|\$\{([^{}]*)\}|\$\{")


def substitute(value: Any, env: Mapping[str, str]) -> Any:
    """``value`` with every ``${...}`` in its strings replaced from ``env``.

    Mappings and lists are copied, never modified in place (the caller's dict may be
    reused). Raises :class:`~astrocyte.config.problems.ConfigProblems` naming the
    dotted key path of every unset variable without a default or malformed reference.
    """
    problems: list[ConfigError] = []
    result = _walk(value, env, (), problems)
    if problems:
        raise ConfigProblems(problems)
    return result


def _walk(
    value: Any, env: Mapping[str, str], path: tuple[str | int, ...], problems: list[ConfigError]
) -> Any:
    if isinstance(value, str):
        try:
            return _substitute_str(value, env, path)
        except ConfigError as exc:
            problems.append(exc)
            return value
    if isinstance(value, Mapping):
        return {k: _walk(v, env, (*path, str(k)), problems) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v, env, (*path, i), problems) for i, v in enumerate(value)]
    return value


def _substitute_str(text: str, env: Mapping[str, str], path: tuple[str | int, ...]) -> str:
    if "${" not in text:
        return text  # fast path: almost every value

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$${":
            return "${"
        body = match.group(1)
        if body is None:
            raise ConfigError(
                key_path(path),
                f"unterminated or nested '${{' in {text!r}",
                fix="close it with '}' (defaults cannot contain '${'), or write '$${' "
                "for a literal '${'",
            )
        name, sep, default = body.partition(":-")
        if not _NAME.match(name):
            raise ConfigError(
                key_path(path),
                f"'${{{body}}}' is not a valid environment reference",
                fix="use ${NAME} or ${NAME:-default} with NAME of letters, digits and _, "
                "or write '$${' for a literal '${'",
            )
        found = env.get(name)
        if sep:
            return found if found else default
        if found is None:
            raise ConfigError(
                key_path(path),
                f"environment variable {name} is not set",
                fix=f"export {name}=..., or give a default: ${{{name}:-value}}",
            )
        return found

    return _TOKEN.sub(replace, text)
