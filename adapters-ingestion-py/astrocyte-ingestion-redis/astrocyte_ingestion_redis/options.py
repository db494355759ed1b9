"""The ``options`` of a ``driver: redis`` source, validated without any I/O."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from astrocyte.errors import ConfigError

__all__ = ["KNOWN_OPTIONS", "RedisStreamsOptions"]

#: Options read by the core for every stream source, not by this driver.
_CORE_OPTIONS = frozenset({"format"})
KNOWN_OPTIONS = frozenset(
    {
        "url",
        "stream",
        "streams",
        "group",
        "consumer",
        "dead_letter_stream",
        "batch_size",
        "block_ms",
        "claim_idle_ms",
        "start_id",
        "maxlen",
        "field",
        "socket_timeout",
    }
)
_URL = re.compile(r"^(redis|rediss|unix)://\S+$")
# A stream entry id, or one of the special ids XGROUP CREATE accepts.
_START_ID = re.compile(r"^(\$|0|\d+|\d+-\d+)$")
_MAX_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class RedisStreamsOptions:
    """The options of one source, with defaults filled in (see the README)."""

    url: str
    streams: tuple[str, ...]
    group: str
    consumer: str
    dead_letter_stream: str
    batch_size: int = 500
    block_ms: int = 1000
    claim_idle_ms: int = 60_000
    start_id: str = "0"
    maxlen: int | None = None
    field: str = "payload"
    socket_timeout: float = 30.0

    def dead_letter_stream_of(self, stream: str) -> str:
        """The dead-letter stream of ``stream`` (``{stream}`` in the option is filled in)."""
        return self.dead_letter_stream.replace("{stream}", stream)

    @classmethod
    def parse(cls, source_id: str, options: Mapping[str, Any]) -> RedisStreamsOptions:
        """Validate ``sources.<source_id>.options``; :class:`ConfigError` names the bad key."""

        def key(name: str) -> str:
            return f"sources.{source_id}.options.{name}"

        unknown = sorted(set(options) - KNOWN_OPTIONS - _CORE_OPTIONS)
        if unknown:
            raise ConfigError(
                key(unknown[0]),
                "unknown option of the redis driver",
                fix="known options: " + ", ".join(sorted(KNOWN_OPTIONS | _CORE_OPTIONS)),
            )

        url = options.get("url")
        if not isinstance(url, str) or not _URL.match(url):
            raise ConfigError(
                key("url"),
                f"must be a redis:// , rediss:// or unix:// URL, got {url!r}",
                fix="e.g. redis://127.0.0.1:6379/0 (write a password as ${REDIS_PASSWORD})",
            )

        streams = _streams(options, key)
        group = _name(options, "group", f"astrocyte-{source_id}", key)
        consumer = _name(options, "consumer", f"{socket.gethostname()}-{os.getpid()}", key)
        dead = _name(options, "dead_letter_stream", "{stream}:dlq", key)
        for stream in streams:
            if dead.replace("{stream}", stream) == stream:
                raise ConfigError(
                    key("dead_letter_stream"),
                    f"is the stream {stream!r} itself: dead letters would be consumed again",
                    fix="e.g. '{stream}:dlq' (the default)",
                )
        field = _name(options, "field", "payload", key)

        start_id = options.get("start_id", "0")
        if isinstance(start_id, int) and not isinstance(start_id, bool) and start_id >= 0:
            start_id = str(start_id)
        if not isinstance(start_id, str) or not _START_ID.match(start_id):
            raise ConfigError(
                key("start_id"),
                f"must be '0' (the whole stream), '$' (only new entries) or an entry id, "
                f"got {start_id!r}",
            )

        # A blocking read must end (and ``stop`` be seen) well within the supervisor's
        # stop timeout, and before the socket timeout takes it for a dead server.
        block_ms = _int(options, "block_ms", 1000, 1, 20_000, key)
        socket_timeout = _seconds(options, "socket_timeout", 30.0, key)
        if socket_timeout * 1000 < block_ms + 1000:
            raise ConfigError(
                key("socket_timeout"),
                f"{socket_timeout}s does not leave a blocking read of block_ms={block_ms} "
                "a second to answer",
                fix="raise socket_timeout or lower block_ms",
            )
        return cls(
            url=url,
            streams=streams,
            group=group,
            consumer=consumer,
            dead_letter_stream=dead,
            batch_size=_int(options, "batch_size", 500, 1, _MAX_BATCH, key),
            block_ms=block_ms,
            claim_idle_ms=_int(options, "claim_idle_ms", 60_000, 0, 7 * 86_400_000, key),
            start_id=start_id,
            maxlen=_optional_int(options, "maxlen", key),
            field=field,
            socket_timeout=socket_timeout,
        )


def _streams(options: Mapping[str, Any], key: Any) -> tuple[str, ...]:
    if "stream" in options and "streams" in options:
        raise ConfigError(key("streams"), "give either stream or streams, not both")
    if "stream" in options:
        raw: Any = [options["stream"]]
        name = "stream"
    elif "streams" in options:
        raw = options["streams"]
        name = "streams"
        if isinstance(raw, str) or not isinstance(raw, list | tuple) or not raw:
            raise ConfigError(key(name), "must be a non-empty list of stream names")
    else:
        raise ConfigError(
            key("stream"),
            "the redis driver needs a stream",
            fix="stream: events (or streams: [...])",
        )
    out: list[str] = []
    for value in raw:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(key(name), f"stream names must be non-empty strings, got {value!r}")
        if value in out:
            raise ConfigError(key(name), f"stream {value!r} is listed twice")
        out.append(value)
    return tuple(out)


def _name(options: Mapping[str, Any], name: str, default: str, key: Any) -> str:
    value = options.get(name, default)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key(name), f"must be a non-empty string, got {value!r}")
    return value


def _int(options: Mapping[str, Any], name: str, default: int, low: int, high: int, key: Any) -> int:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(key(name), f"must be an integer from {low} to {high}, got {value!r}")
    return value


def _optional_int(options: Mapping[str, Any], name: str, key: Any) -> int | None:
    value = options.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(key(name), f"must be a positive integer or null, got {value!r}")
    return value


def _seconds(options: Mapping[str, Any], name: str, default: float, key: Any) -> float:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
        raise ConfigError(key(name), f"must be a number of seconds in (0, 3600], got {value!r}")
    return float(value)
