"""Loading configuration from a file, a mapping, or nothing (zero config)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic
import yaml

from astrocyte.config.schema import AstrocyteConfig
from astrocyte.errors import ConfigError

ConfigSource = AstrocyteConfig | Mapping[str, Any] | str | Path | None


def load_config(source: ConfigSource = None) -> AstrocyteConfig:
    """Build a validated :class:`AstrocyteConfig`.

    ``source`` is a config object (returned as is), a mapping, a path to a YAML/JSON
    file, or ``None`` for the zero-config defaults. Any problem is a
    :class:`ConfigError` naming the offending key.
    """
    if source is None:
        return AstrocyteConfig()
    if isinstance(source, AstrocyteConfig):
        return source
    if isinstance(source, str | Path):
        data = _read_file(Path(source))
    elif isinstance(source, Mapping):
        data = dict(source)
    else:
        raise ConfigError(
            "<root>",
            f"expected a mapping, a path or None, got {type(source).__name__}",
            fix="pass a dict, a path to astrocyte.yaml, or nothing",
        )
    try:
        return AstrocyteConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        raise _to_config_error(exc) from None


def _read_file(path: Path) -> dict[str, Any]:
    path = path.expanduser()
    if not path.is_file():
        raise ConfigError("<file>", f"{path} does not exist", fix="check the path")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError("<file>", f"{path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("<root>", f"{path} must hold a mapping at the top level")
    return data


def _to_config_error(exc: pydantic.ValidationError) -> ConfigError:
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "<root>"
    message = first["msg"]
    fix = None
    if first["type"] == "extra_forbidden":
        message = "unknown key"
        fix = "remove it or check the spelling against docs/configuration.md"
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ConfigError(key, message, fix=fix)
