"""Extraction profiles: named recipes for how retained content becomes memories.

A profile (:class:`~astrocyte.config.ingest_schema.ExtractionProfileConfig`) decides
the chunking, which metadata is lifted out of a structured payload
(``metadata_mapping``), which tags are added (``tags``, ``tag_rules``), how entities
are found (``entity_extraction``: ``none`` | ``rules`` | ``llm``, with ``gazetteers``
and ``aliases``) and which bank a source retains into (``target_bank_template``,
rendered by :func:`render_bank_template`).

Built-in profiles (``builtin_text``, ``builtin_conversation``, ``builtin_email``,
``builtin_document``, ``builtin_event``) reproduce what retain did before profiles
existed, so a retain that names no profile behaves exactly as before; the built-in for
an item is chosen by its ``content_type`` (:data:`DEFAULT_PROFILE_BY_CONTENT_TYPE`).
Profiles in the config's ``extraction_profiles`` section are added to them, and one
with a built-in's name replaces it.

The *payload* paths refer to: for ``content_type: event``, the JSON object itself
(``$.ticket.priority``); for every other content type, the envelope
``{"content": <normalised text>, "metadata": {...}, "source": ..., "content_type":
..., "turns": [{"speaker", "text", "turn_id"}, ...]}`` (``turns`` only for dialogue).

Pure functions and immutable objects, no I/O.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from astrocyte.config.common import ChunkingConfig
from astrocyte.config.ingest_schema import ExtractionProfileConfig, TagRuleConfig
from astrocyte.errors import ValidationError
from astrocyte.pipeline.entities import EntityMention, Gazetteer, normalise_name
from astrocyte.spi import MetadataValue

__all__ = [
    "BUILTIN_PROFILES",
    "DEFAULT_PROFILE_BY_CONTENT_TYPE",
    "ProfileRegistry",
    "ResolvedProfile",
    "apply_tag_rules",
    "expand_aliases",
    "json_path",
    "map_metadata",
    "render_bank_template",
]

BUILTIN_PROFILES: Mapping[str, ExtractionProfileConfig] = {
    "builtin_text": ExtractionProfileConfig(
        description="Plain text, HTML and Markdown: top-level chunking, rule-based entities."
    ),
    "builtin_conversation": ExtractionProfileConfig(
        description="Conversations and transcripts: whole turns per chunk, speakers and "
        "turn ids in metadata, rule-based entities."
    ),
    "builtin_email": ExtractionProfileConfig(
        description="Email: headers and body text; occurred_at from the Date header."
    ),
    "builtin_document": ExtractionProfileConfig(
        description="Documents (HTML or Markdown detected): top-level chunking."
    ),
    "builtin_event": ExtractionProfileConfig(
        description="JSON events rendered as key: value lines."
    ),
}
"""The profiles every instance has; config profiles of the same name replace them."""

DEFAULT_PROFILE_BY_CONTENT_TYPE: Mapping[str, str] = {
    "text": "builtin_text",
    "html": "builtin_text",
    "markdown": "builtin_text",
    "conversation": "builtin_conversation",
    "transcript": "builtin_conversation",
    "email": "builtin_email",
    "document": "builtin_document",
    "event": "builtin_event",
}
"""Which built-in profile an item that names none uses, by content type."""


@dataclass(frozen=True, slots=True)
class ResolvedProfile:
    """A profile ready to apply: its config plus what is compiled from it once."""

    name: str
    config: ExtractionProfileConfig
    chunking: ChunkingConfig
    gazetteer: Gazetteer | None
    alias_groups: Mapping[str, tuple[str, ...]]
    """Normalised name -> every normalised name of its alias group (itself included)."""

    @property
    def needs_payload(self) -> bool:
        """Whether applying the profile reads the payload (worth parsing it)."""
        c = self.config
        return bool(c.metadata_mapping or c.tag_rules or c.content_path or c.occurred_at_path)


class ProfileRegistry:
    """The built-in profiles merged with ``extraction_profiles`` from the config.

    ``default_chunking`` (the top-level ``chunking`` section) is the chunking of every
    profile that sets none: the config loader already filled in what a profile's own
    ``chunking`` leaves out from it.
    """

    def __init__(
        self,
        profiles: Mapping[str, ExtractionProfileConfig],
        default_chunking: ChunkingConfig,
    ) -> None:
        merged = {**BUILTIN_PROFILES, **profiles}
        self._resolved = {
            name: _resolve(name, profile, default_chunking) for name, profile in merged.items()
        }

    def names(self) -> list[str]:
        """Every profile name, sorted."""
        return sorted(self._resolved)

    def get(self, name: str, field: str = "profile") -> ResolvedProfile:
        """The profile called ``name``; a ValidationError on ``field`` if none is."""
        try:
            return self._resolved[name]
        except KeyError:
            raise ValidationError(
                field, f"unknown extraction profile {name!r}", fix=f"use one of {self.names()}"
            ) from None

    def for_item(self, name: str | None, content_type: str) -> ResolvedProfile:
        """The profile an item names, else the built-in for its content type."""
        if name is not None:
            return self.get(name)
        return self._resolved[DEFAULT_PROFILE_BY_CONTENT_TYPE.get(content_type, "builtin_text")]


def _resolve(
    name: str, profile: ExtractionProfileConfig, default_chunking: ChunkingConfig
) -> ResolvedProfile:
    kinds: dict[str, list[str]] = {k: list(v) for k, v in profile.gazetteers.items()}
    groups: dict[str, tuple[str, ...]] = {}
    for canonical, others in profile.aliases.items():
        # Every alias must also be *found* in text, so alias groups join the gazetteer
        # (as kind "alias" unless a gazetteer already lists the name).
        kinds.setdefault("alias", []).extend([canonical, *others])
        group = tuple(dict.fromkeys(n for n in map(normalise_name, [canonical, *others]) if n))
        for member in group:
            groups[member] = tuple(dict.fromkeys([*groups.get(member, ()), *group]))
    return ResolvedProfile(
        name=name,
        config=profile,
        chunking=profile.chunking or default_chunking,
        gazetteer=Gazetteer(kinds) if kinds else None,
        alias_groups=groups,
    )


def expand_aliases(
    mentions: Iterable[EntityMention], groups: Mapping[str, tuple[str, ...]]
) -> list[EntityMention]:
    """``mentions`` plus, for each one in an alias group, the group's other names.

    A memory that says "Cap" is then linked to "tomas varga" and "e-4417" too, so a
    recall naming the person any of those ways reaches it through the graph even
    though its text shares no word with the question.
    """
    out: dict[str, EntityMention] = {}
    for mention in mentions:
        out.setdefault(mention.normalized, mention)
        for other in groups.get(mention.normalized, ()):
            out.setdefault(other, EntityMention(other, other, mention.kind))
    return list(out.values())


# ------------------------------------------------------------------ payload paths

_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\['([^']+)'\]|\[(\d+)\]|\[(\*)\]")


def json_path(payload: Any, path: str) -> list[Any]:
    """Values at ``path`` in ``payload`` (``$``, ``.name``, ``['odd']``, ``[0]``, ``[*]``).

    A path through a missing key, an out-of-range index or a non-container yields
    nothing rather than an error: payloads vary, and a missing field simply maps to
    no metadata. A malformed path is a ValueError (the config checks paths on load).
    """
    if not path.startswith("$"):
        raise ValueError(f"payload path must start with '$': {path!r}")
    current: list[Any] = [payload]
    pos = 1
    while pos < len(path):
        match = _STEP.match(path, pos)
        if match is None:
            raise ValueError(f"bad payload path {path!r} at {pos}")
        pos = match.end()
        key = match.group(1) or match.group(2)
        following: list[Any] = []
        for value in current:
            if key is not None:
                if isinstance(value, Mapping) and key in value:
                    following.append(value[key])
            elif match.group(3) is not None:
                index = int(match.group(3))
                if isinstance(value, list) and index < len(value):
                    following.append(value[index])
            elif isinstance(value, list):
                following.extend(value)
            elif isinstance(value, Mapping):
                following.extend(value.values())
        current = following
    return current


def _as_metadata_value(values: Sequence[Any]) -> MetadataValue:
    """One metadata value (a JSON scalar) for what a path matched."""
    if len(values) == 1 and (values[0] is None or isinstance(values[0], str | int | float)):
        value: MetadataValue = values[0]
        return value
    # Several values ([*]) or a container: metadata is flat, so they become one string.
    parts = [v if isinstance(v, str) else json.dumps(v, sort_keys=True) for v in values]
    return ", ".join(parts)


def map_metadata(mapping: Mapping[str, str], payload: Any) -> dict[str, MetadataValue]:
    """``metadata_mapping`` applied to ``payload``: key -> value at its path.

    Keys whose path matches nothing are left out; several matches are joined with
    ``", "``; an object or list value is stored as its JSON text.
    """
    out: dict[str, MetadataValue] = {}
    for key, path in mapping.items():
        values = json_path(payload, path)
        if values:
            out[key] = _as_metadata_value(values)
    return out


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _rule_fires(rule: TagRuleConfig, values: Sequence[Any]) -> bool:
    for value in values:
        if rule.equals is not None:
            # bool is an int in Python: True must not equal 1 here, as in JSON.
            if type(value) is type(rule.equals) and value == rule.equals:
                return True
            if _number(value) and _number(rule.equals) and value == rule.equals:
                return True
        elif rule.matches is not None:
            if isinstance(value, str | int | float) and re.search(rule.matches, str(value)):
                return True
        elif rule.contains is not None:
            if isinstance(value, str) and rule.contains in value:
                return True
            if isinstance(value, list) and rule.contains in value:
                return True
        elif value not in (None, "", [], {}):
            return True
    return False


def apply_tag_rules(profile: ExtractionProfileConfig, payload: Any) -> list[str]:
    """The profile's fixed ``tags`` plus the tag of every ``tag_rules`` entry that
    fires on ``payload``, in order, each once."""
    tags = list(profile.tags)
    for rule in profile.tag_rules:
        if _rule_fires(rule, json_path(payload, rule.path)):
            tags.append(rule.tag)
    return list(dict.fromkeys(tags))


# ---------------------------------------------------------------- bank templates

_BANK_UNSAFE = re.compile(r"[^A-Za-z0-9._:@-]+")


def render_bank_template(
    template: str,
    *,
    source: str | None = None,
    principal: str | None = None,
    agent: str | None = None,
    user: str | None = None,
    tenant: str | None = None,
    date: datetime | None = None,
    metadata: Mapping[str, Any] | None = None,
    payload: Any = None,
) -> str:
    """The bank id a ``target_bank_template`` names for one retain.

    Placeholders: ``{source}``, ``{principal}``, ``{agent}``, ``{user}``,
    ``{tenant}``, ``{date}`` (``YYYY-MM-DD``), ``{metadata.<key>}`` and
    ``{payload.<dotted.path>}``. Characters not allowed in a bank id (anything but
    letters, digits and ``. _ : @ -``) in a substituted value become ``-``, so a
    value cannot smuggle a different bank shape in.

    Raises:
        ValidationError: on ``target_bank_template``, naming the placeholder, when
            a placeholder has no value for this retain or the template is malformed.
    """
    values: dict[str, Any] = {
        "source": source,
        "principal": principal,
        "agent": agent,
        "user": user,
        "tenant": tenant,
        "date": date.date().isoformat() if date is not None else None,
    }
    out: list[str] = []
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValidationError("target_bank_template", f"is malformed: {exc}") from None
    for literal, field, _spec, _conversion in parts:
        out.append(literal)
        if field is None:
            continue
        root, _, rest = field.partition(".")
        value: Any
        if root == "metadata" and rest:
            value = (metadata or {}).get(rest)
        elif root == "payload" and rest:
            found = json_path(payload, "$." + rest)
            value = found[0] if found else None
        else:
            value = values.get(field)
        if value is None or value == "":
            raise ValidationError(
                "target_bank_template",
                f"placeholder {{{field}}} has no value for this retain",
                fix="send the field, or use a template without it",
            )
        out.append(_BANK_UNSAFE.sub("-", str(value)).strip("-") or "-")
    return "".join(out)
