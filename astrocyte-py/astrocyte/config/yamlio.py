"""Reading config files strictly: YAML (or JSON, a YAML subset) with duplicate keys
rejected.

PyYAML silently keeps the last of two equal keys, so a config with ``recall:`` twice
would lose the first block without a word; for a strict config that is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from astrocyte.errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses duplicate mapping keys."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise ConfigError(
                str(key),
                f"duplicate key (lines {seen[key]} and {line} of {key_node.start_mark.name})",
                fix="keep one of them; YAML would silently drop the first",
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def read_mapping(path: Path, *, key: str = "<file>") -> dict[str, Any]:
    """The mapping at the top of the YAML/JSON file ``path`` (``{}`` if empty).

    ``key`` names the config key that pointed at the file (for a profile file,
    ``profile``), so errors say which setting to fix.
    """
    path = path.expanduser()
    if not path.is_file():
        raise ConfigError(key, f"{path} does not exist or is not a file", fix="check the path")
    try:
        # Pass the open file, not its text, so YAML error marks carry the file name.
        with path.open(encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=_StrictLoader)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(key, f"cannot read {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(key, f"{path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            key,
            f"{path} must hold a mapping at the top level, got {type(data).__name__}",
            fix="write 'section: value' pairs, e.g. 'recall: {rrf_k: 60}'",
        )
    return data
