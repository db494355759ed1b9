"""Validation of the YAML options into one immutable settings object.

The factory calls the store constructor from synchronous code with whatever the YAML
held, so every option may arrive as a plain ``str`` (e.g. after environment
substitution) and is converted here, without any I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlsplit

from astrocyte.errors import ConfigError

__all__ = ["SCHEMES", "Neo4jOptions", "redact_uri"]

#: URI schemes the official driver accepts: direct (``bolt``) or routing (``neo4j``),
#: plain or TLS (``+s``) or TLS with self-signed certificates (``+ssc``).
SCHEMES = frozenset(
    {"bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc"},
)


def redact_uri(uri: str) -> str:
    """``uri`` without any ``user:password@`` part, safe for error messages."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparsable uri>"
    if "@" not in parts.netloc:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"***@{host}").geturl()


def _number(name: str, value: object) -> float:
    # bool is an int subclass; `timeout_s: true` is a typo, never one second.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(name, f"must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(name, f"must be a number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(name, f"must be a positive number, got {value!r}")
    return number


def _count(name: str, value: object) -> int:
    number = _number(name, value)
    if not number.is_integer():
        raise ConfigError(name, f"must be a whole number, got {value!r}")
    return int(number)


def _text(name: str, value: object, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ConfigError(name, f"must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise ConfigError(name, "must not be empty")
    return value


@dataclass(frozen=True, slots=True)
class Neo4jOptions:
    """Validated connection settings of :class:`~astrocyte_neo4j.Neo4jGraphStore`."""

    uri: str
    user: str
    password: str | None
    database: str
    timeout_s: float
    connect_timeout_s: float
    max_pool_size: int

    @classmethod
    def parse(
        cls,
        *,
        uri: object,
        user: object,
        password: object,
        database: object,
        timeout_s: object,
        connect_timeout_s: object,
        max_pool_size: object,
    ) -> Neo4jOptions:
        """Check and convert raw option values; raises :class:`ConfigError` naming the
        first bad option (the password itself never appears in a message)."""
        uri_text = _text("uri", uri).strip()
        try:
            parts = urlsplit(uri_text)
            _ = parts.port  # parses the port: "host:abc" raises here
        except ValueError:
            raise ConfigError(
                "uri", f"{redact_uri(uri_text)!r} is not a valid URI", fix=_URI_FIX
            ) from None
        if parts.scheme.lower() not in SCHEMES:
            raise ConfigError(
                "uri",
                f"unsupported scheme {parts.scheme!r} in {redact_uri(uri_text)!r}",
                fix=_URI_FIX,
            )
        if not parts.hostname:
            raise ConfigError("uri", f"no host in {redact_uri(uri_text)!r}", fix=_URI_FIX)
        if "@" in parts.netloc:
            raise ConfigError(
                "uri",
                "must not contain credentials",
                fix="remove user:password@ from uri and set the user and password options",
            )
        if password is not None and not isinstance(password, str):
            raise ConfigError("password", "must be a string")
        return cls(
            uri=uri_text,
            user=_text("user", user),
            password=password,
            database=_text("database", database),
            timeout_s=_number("timeout_s", timeout_s),
            connect_timeout_s=_number("connect_timeout_s", connect_timeout_s),
            max_pool_size=_count("max_pool_size", max_pool_size),
        )


_URI_FIX = "use bolt://host:7687 (or neo4j://, bolt+s://, neo4j+s:// for routing or TLS)"
