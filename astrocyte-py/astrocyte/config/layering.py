"""Layering: built-in defaults -> named profile -> compliance profile -> user config.

Each layer is a partial config, merged over the one before it:

* mappings merge key by key, recursively;
* everything else (scalars, lists, ``null``) replaces the lower layer's value, so a
  user's ``recall.strategies`` list is the list, not an addition to the profile's;
* a block that names a different ``provider`` than the lower layer replaces that
  block wholesale, because options of one provider (``intra_op_num_threads``) mean
  nothing to another (``openai``).

The built-in defaults are the pydantic field defaults, applied by validation, so
they are the bottom layer without being a mapping here - except defaults that are
themselves mappings (``recall.weights``): those are laid in explicitly, so a layer
that sets one weight keeps the default weights of the other strategies. Compliance locks are not
enforced here but on the final, validated config
(:func:`astrocyte.config.crossref.check_locks`): only the final value matters, whichever
layer set it.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from astrocyte.config.env import substitute
from astrocyte.config.profiles import COMPLIANCE_PROFILES, NAMED_PROFILES
from astrocyte.config.suggest import hint
from astrocyte.config.yamlio import read_mapping
from astrocyte.errors import ConfigError

_LAYER_KEYS = ("profile", "compliance")


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` laid over ``base`` (neither is modified); see the module docstring."""
    out = dict(base)
    for key, value in override.items():
        below = out.get(key)
        if (
            isinstance(below, Mapping)
            and isinstance(value, Mapping)
            and not _provider_changed(below, value)
        ):
            out[key] = deep_merge(below, value)
        else:
            out[key] = value
    return out


def _provider_changed(below: Mapping[str, Any], above: Mapping[str, Any]) -> bool:
    return "provider" in above and "provider" in below and above["provider"] != below["provider"]


def mapping_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """The non-empty mapping-valued defaults of ``model``, nested as in a config
    (``{"recall": {"weights": {...}}}``), descending into sections whose default is a
    model instance (never into optional sections that default to null)."""
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, Mapping) and default:
            out[name] = copy.deepcopy(dict(default))
        elif isinstance(default, BaseModel):
            nested = mapping_defaults(type(default))
            if nested:
                out[name] = nested
    return out


def apply_layers(
    data: Any,
    context: Mapping[str, Any] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
) -> Any:
    """The user's raw config with its named and compliance profiles merged beneath.

    ``data`` is what was handed to validation: anything but a mapping is returned
    unchanged for pydantic to reject. ``context`` may hold ``base_dir`` (where a
    profile *file* is looked up) and ``env`` (for ``${...}`` in that file).
    ``defaults`` is the bottom layer (see :func:`mapping_defaults`).
    """
    if not isinstance(data, Mapping):
        return data
    user = {str(k): _plain(v) for k, v in data.items()}
    layers: list[Mapping[str, Any]] = [defaults] if defaults else []
    profile = user.get("profile")
    if profile is not None:
        layers.append(named_profile_values(profile, context))
    compliance = user.get("compliance")
    if compliance is not None:
        layers.append(compliance_values(compliance))
    if not layers:
        return user
    merged: dict[str, Any] = {}
    for layer in (*layers, user):
        merged = deep_merge(merged, layer)
    return merged


def _plain(value: Any) -> Any:
    # A section passed as a model instance counts with the fields that were set on
    # it, so AstrocyteConfig(recall=RecallConfig(rrf_k=5), profile="research") keeps
    # the profile's other recall settings.
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    return value


def named_profile_values(profile: Any, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The partial config of ``profile``: a built-in name or a path to a YAML file."""
    if not isinstance(profile, str) or not profile:
        raise ConfigError(
            "profile",
            f"must be a profile name or a file path, got {profile!r}",
            fix=f"use one of {', '.join(NAMED_PROFILES)} or a path to a YAML file",
        )
    if profile in NAMED_PROFILES:
        return copy.deepcopy(dict(NAMED_PROFILES[profile].values))
    if not _looks_like_path(profile):
        raise ConfigError(
            "profile",
            f"unknown profile {profile!r}" + hint(profile, NAMED_PROFILES, listing=False),
            fix=f"use one of {', '.join(NAMED_PROFILES)}, or a path to a YAML file "
            "(ending in .yaml/.yml or containing '/')",
        )
    base_dir = Path((context or {}).get("base_dir") or Path.cwd())
    path = Path(profile).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    values = read_mapping(path, key="profile")
    nested = [k for k in _LAYER_KEYS if k in values]
    if nested:
        raise ConfigError(
            "profile",
            f"profile file {path} sets {nested[0]!r}; profiles cannot choose other profiles",
            fix=f"move {nested[0]!r} into the main config file",
        )
    env = (context or {}).get("env")
    result: dict[str, Any] = substitute(values, os.environ if env is None else env)
    return result


def _looks_like_path(value: str) -> bool:
    return "/" in value or "\\" in value or value.endswith((".yaml", ".yml", ".json"))


def compliance_values(compliance: Any) -> dict[str, Any]:
    """The values a compliance profile sets (its locks are checked after validation)."""
    if not isinstance(compliance, str) or compliance not in COMPLIANCE_PROFILES:
        shown = compliance if isinstance(compliance, str) else repr(compliance)
        raise ConfigError(
            "compliance",
            f"unknown compliance profile {shown!r}"
            + hint(str(compliance), COMPLIANCE_PROFILES, listing=False),
            fix=f"use one of {', '.join(COMPLIANCE_PROFILES)}, or leave it out",
        )
    return copy.deepcopy(dict(COMPLIANCE_PROFILES[compliance].values))
