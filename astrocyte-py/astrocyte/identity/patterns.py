"""Permissions, identifier syntax and the wildcard patterns grants are written in.

Kept free of config and facade imports so the config schema can use these types
without an import cycle.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache


class Permission(StrEnum):
    """What a caller may do with a bank.

    ``admin`` implies the other three. ``Permission`` is a ``str`` enum, so
    ``"read" in context.effective_permissions("alice")`` works.
    """

    READ = "read"
    WRITE = "write"
    FORGET = "forget"
    ADMIN = "admin"


#: Every permission; what ``admin`` expands to and what an unrestricted caller has.
ALL_PERMISSIONS: frozenset[Permission] = frozenset(Permission)
NO_PERMISSIONS: frozenset[Permission] = frozenset()


def expand(permissions: frozenset[Permission] | set[Permission]) -> frozenset[Permission]:
    """``permissions`` with ``admin`` expanded to every permission."""
    if Permission.ADMIN in permissions:
        return ALL_PERMISSIONS
    return frozenset(permissions)


# An actor type is a short lowercase word ("user", "agent", "service"): it becomes the
# prefix of a principal and of conventional bank ids, so it must not contain ":".
ACTOR_TYPE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# Actor ids use exactly the bank id alphabet so the convention ``user:{id}`` ->
# ``user-{id}`` always yields a valid bank id (length permitting).
ACTOR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
# A principal is "type:id" or a bare name such as "local".
PRINCIPAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,255}$")
# Tenants never contain "/": it is the separator of tenant-namespaced storage bank ids,
# and bank ids cannot contain it either, so "{tenant}/{bank}" can never collide.
TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

_PRINCIPAL_PATTERN = re.compile(r"^[A-Za-z0-9._:@*-]{1,256}$")
_BANK_PATTERN = re.compile(r"^(?:[A-Za-z0-9._:@*-]|\{id\}|\{type\}){1,128}$")
_PLACEHOLDER = re.compile(r"\{(id|type)\}")


def check_principal_pattern(value: str) -> str:
    """A principal pattern: principal characters plus ``*`` (any run of characters)."""
    if not _PRINCIPAL_PATTERN.match(value):
        raise ValueError(
            f"invalid principal pattern {value[:80]!r}: use letters, digits, . _ : @ - "
            "and * as a wildcard, e.g. 'agent:*' or 'user:alice'"
        )
    return value


def check_bank_pattern(value: str) -> str:
    """A bank pattern: bank id characters, ``*`` wildcards and ``{id}`` / ``{type}``
    placeholders (replaced by the id / type of the principal the grant is checked for)."""
    if not _BANK_PATTERN.match(value):
        raise ValueError(
            f"invalid bank pattern {value[:80]!r}: use letters, digits, . _ : @ -, "
            "* as a wildcard and {id} / {type} placeholders, e.g. 'user-*' or 'user-{id}'"
        )
    return value


@lru_cache(maxsize=4096)
def _compile(pattern: str) -> re.Pattern[str]:
    # Only "*" is special; everything else (including "." and "?") is literal, so a
    # bank named "a.b" is never matched by accident.
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


def matches(pattern: str, value: str) -> bool:
    """Whether ``value`` matches ``pattern`` (``*`` matches any run, even empty)."""
    if pattern == "*":
        return True
    if "*" not in pattern:
        return pattern == value
    return _compile(pattern).match(value) is not None


def fill(pattern: str, *, actor_type: str, actor_id: str) -> str | None:
    """``pattern`` with ``{id}`` / ``{type}`` replaced; ``None`` when it needs a part the
    principal does not have (a bare principal such as ``local`` has no type)."""
    if "{" not in pattern:
        return pattern
    if "{type}" in pattern and not actor_type:
        return None

    def part(match: re.Match[str]) -> str:
        # Ids and types never contain "*", so a filled placeholder stays literal.
        return actor_id if match.group(1) == "id" else actor_type

    return _PLACEHOLDER.sub(part, pattern)


def split_principal(principal: str) -> tuple[str, str]:
    """``("user", "123")`` for ``"user:123"``; ``("", principal)`` for a bare principal."""
    kind, sep, rest = principal.partition(":")
    if sep and ACTOR_TYPE.match(kind) and ACTOR_ID.match(rest):
        return kind, rest
    return "", principal
