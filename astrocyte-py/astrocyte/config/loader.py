"""Loading configuration from a file, a mapping, or nothing (zero config).

``load_config`` is the one entry point: read (strict YAML), substitute ``${ENV}``
(once, here), then validate, which layers the profiles and checks cross-references
(see :class:`~astrocyte.config.schema.AstrocyteConfig`). Every failure is a
:class:`~astrocyte.errors.ConfigError` whose ``key`` is the dotted path to fix.

There is deliberately no implicit search for a config file: ``load_config()`` and
``Astrocyte.from_config()`` with no argument are always the zero config, so a stray
``astrocyte.yaml`` in the working directory cannot change a program (or a test
suite) behind its back. Opting in is one call: ``load_config(find_config_file())``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic

from astrocyte.config.env import substitute
from astrocyte.config.problems import from_validation_error
from astrocyte.config.schema import AstrocyteConfig
from astrocyte.config.yamlio import read_mapping
from astrocyte.errors import ConfigError

ConfigSource = AstrocyteConfig | Mapping[str, Any] | str | Path | None

CONFIG_FILE_NAMES = ("astrocyte.yaml", "astrocyte.yml")
"""File names looked for in a directory, in this order."""

CONFIG_ENV_VAR = "ASTROCYTE_CONFIG"


def load_config(
    source: ConfigSource = None,
    *,
    env: Mapping[str, str] | None = None,
) -> AstrocyteConfig:
    """Build a validated :class:`AstrocyteConfig`.

    ``source`` is a config object (returned as is), a mapping, a path to a YAML/JSON
    file or to a directory holding ``astrocyte.yaml`` / ``astrocyte.yml``, or ``None``
    for the zero-config defaults. ``env`` replaces ``os.environ`` for ``${VAR}``
    substitution (tests, or a controlled environment).

    Raises:
        ConfigError: any problem, naming the offending key path (a
            :class:`~astrocyte.config.problems.ConfigProblems` when validation found
            them, listing all of them).
    """
    if source is None:
        return AstrocyteConfig()
    if isinstance(source, AstrocyteConfig):
        return source
    base_dir: Path | None = None
    if isinstance(source, str | Path):
        path = resolve_config_path(Path(source))
        data: Mapping[str, Any] = read_mapping(path)
        base_dir = path.parent
    elif isinstance(source, Mapping):
        data = source
    else:
        raise ConfigError(
            "<root>",
            f"expected a mapping, a path or None, got {type(source).__name__}",
            fix="pass a dict, a path to astrocyte.yaml, or nothing",
        )
    environ = os.environ if env is None else env
    substituted = substitute(data, environ)
    context = {"base_dir": base_dir, "env": environ}
    try:
        return AstrocyteConfig.model_validate(substituted, context=context)
    except pydantic.ValidationError as exc:
        raise from_validation_error(exc, AstrocyteConfig) from None


def resolve_config_path(path: Path) -> Path:
    """``path`` itself, or for a directory its ``astrocyte.yaml`` / ``astrocyte.yml``."""
    path = path.expanduser()
    if not path.is_dir():
        return path
    found = [path / name for name in CONFIG_FILE_NAMES if (path / name).is_file()]
    if not found:
        raise ConfigError(
            "<file>",
            f"{path} has no {' or '.join(CONFIG_FILE_NAMES)}",
            fix="create one, or pass the config file's path",
        )
    if len(found) > 1:
        raise ConfigError(
            "<file>",
            f"{path} has both {found[0].name} and {found[1].name}",
            fix="keep one of them; which one wins would otherwise be a guess",
        )
    return found[0]


def find_config_file(
    directory: str | Path | None = None, *, env: Mapping[str, str] | None = None
) -> Path | None:
    """The config file a program *may* choose to use, or ``None``.

    ``$ASTROCYTE_CONFIG`` if set, else ``astrocyte.yaml`` / ``astrocyte.yml`` in
    ``directory`` (default: the working directory). Nothing calls this implicitly;
    see the module docstring for why.
    """
    environ = os.environ if env is None else env
    named = environ.get(CONFIG_ENV_VAR)
    if named:
        return Path(named).expanduser()
    base = Path.cwd() if directory is None else Path(directory).expanduser()
    for name in CONFIG_FILE_NAMES:
        if (base / name).is_file():
            return resolve_config_path(base)
    return None
