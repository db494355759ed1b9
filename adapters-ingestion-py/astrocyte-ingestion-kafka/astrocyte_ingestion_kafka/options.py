"""The ``options`` of a ``driver: kafka`` source, validated without any I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from astrocyte.errors import ConfigError

__all__ = ["KafkaOptions", "parse_options"]

#: Kafka's legal topic names (``[a-zA-Z0-9._-]``, at most 249 characters).
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
#: Options read by the core for every stream source (see ``StreamSettings``).
_CORE_OPTIONS = frozenset({"format"})
_KNOWN = frozenset(
    {
        "bootstrap_servers",
        "topics",
        "topic",
        "group_id",
        "client_id",
        "dead_letter_topic",
        "batch_size",
        "poll_timeout_ms",
        "auto_offset_reset",
        "session_timeout_ms",
        "max_poll_interval_ms",
        "request_timeout_ms",
        "security_protocol",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
        "ssl_cafile",
        "ssl_certfile",
        "ssl_keyfile",
    }
)


@dataclass(frozen=True, slots=True)
class KafkaOptions:
    """A Kafka source's settings (see the README for each one)."""

    bootstrap_servers: tuple[str, ...]
    topics: tuple[str, ...]
    group_id: str
    client_id: str
    dead_letter_topic: str | None
    """One dead-letter topic for all; ``None``: ``<topic>.dlq`` per consumed topic."""
    batch_size: int = 500
    poll_timeout_ms: int = 500
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    session_timeout_ms: int = 10_000
    max_poll_interval_ms: int = 300_000
    request_timeout_ms: int = 40_000
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def dead_letter_topic_for(self, topic: str) -> str:
        """Where a dead letter of a message consumed from ``topic`` goes."""
        return self.dead_letter_topic or f"{topic}.dlq"

    def client_kwargs(self) -> dict[str, Any]:
        """Connection settings shared by the consumer and the dead-letter producer
        (the SSL context is built by the driver, since it reads files)."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": list(self.bootstrap_servers),
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
        }
        if self.sasl_mechanism is not None:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_plain_username
            kwargs["sasl_plain_password"] = self.sasl_plain_password
        return kwargs


def _err(source_id: str, key: str, message: str, fix: str | None = None) -> ConfigError:
    return ConfigError(f"sources.{source_id}.options.{key}", message, fix=fix)


def _str(source_id: str, options: Mapping[str, Any], key: str) -> str | None:
    value = options.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _err(source_id, key, f"must be a non-empty string, got {value!r}")
    return value


def _int(
    source_id: str, options: Mapping[str, Any], key: str, default: int, lo: int, hi: int
) -> int:
    value = options.get(key, default)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)  # "${BATCH_SIZE}" substituted from the environment
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _err(source_id, key, f"must be an integer from {lo} to {hi}, got {value!r}")
    return value


def _topic(source_id: str, key: str, value: object) -> str:
    if not isinstance(value, str) or not _TOPIC.match(value) or value in (".", ".."):
        raise _err(
            source_id,
            key,
            f"{value!r} is not a Kafka topic name",
            fix="1-249 characters of letters, digits, '.', '_' and '-'",
        )
    return value


def parse_options(source_id: str, options: Mapping[str, Any]) -> KafkaOptions:
    """Validate ``sources.<source_id>.options``; raises :class:`ConfigError` naming the
    bad key."""
    unknown = sorted(set(options) - _KNOWN - _CORE_OPTIONS)
    if unknown:
        raise _err(
            source_id,
            unknown[0],
            "unknown option",
            fix=f"known options: {', '.join(sorted(_KNOWN | _CORE_OPTIONS))}",
        )

    servers = options.get("bootstrap_servers")
    if isinstance(servers, str):
        servers = [s.strip() for s in servers.split(",") if s.strip()]
    if (
        not isinstance(servers, list)
        or not servers
        or not all(isinstance(s, str) and s.strip() for s in servers)
    ):
        raise _err(
            source_id,
            "bootstrap_servers",
            "required: a host:port string (comma-separated for several) or a list of them",
            fix="e.g. bootstrap_servers: kafka-1:9092,kafka-2:9092",
        )

    if ("topics" in options) == ("topic" in options):
        raise _err(
            source_id,
            "topics",
            "give exactly one of topics (a list) or topic (one name)",
            fix="e.g. topics: [support-tickets]",
        )
    if "topic" in options:
        topics = [_topic(source_id, "topic", options["topic"])]
    else:
        raw = options["topics"]
        if isinstance(raw, str):
            raw = [t.strip() for t in raw.split(",") if t.strip()]
        if not isinstance(raw, list) or not raw:
            raise _err(source_id, "topics", f"must be a non-empty list of topic names, got {raw!r}")
        topics = [_topic(source_id, f"topics[{i}]", t) for i, t in enumerate(raw)]
        if len(set(topics)) != len(topics):
            raise _err(source_id, "topics", "lists a topic twice")

    dead = options.get("dead_letter_topic")
    dead_topic = None if dead is None else _topic(source_id, "dead_letter_topic", dead)
    dead_topics = {dead_topic} if dead_topic else {f"{t}.dlq" for t in topics}
    looped = sorted(dead_topics & set(topics))
    if looped:
        raise _err(
            source_id,
            "dead_letter_topic",
            f"dead letters would go to a consumed topic ({looped[0]}) and loop back",
        )

    reset = options.get("auto_offset_reset", "earliest")
    if reset not in ("earliest", "latest"):
        raise _err(
            source_id, "auto_offset_reset", f"unknown value {reset!r}", fix="earliest | latest"
        )

    protocol = options.get("security_protocol", "PLAINTEXT")
    if protocol not in _SECURITY_PROTOCOLS:
        raise _err(
            source_id,
            "security_protocol",
            f"unknown value {protocol!r}",
            fix=" | ".join(_SECURITY_PROTOCOLS),
        )
    mechanism = _str(source_id, options, "sasl_mechanism")
    username = _str(source_id, options, "sasl_plain_username")
    password = _str(source_id, options, "sasl_plain_password")
    if protocol.startswith("SASL_"):
        mechanism = mechanism or "PLAIN"
        if mechanism not in _SASL_MECHANISMS:
            raise _err(
                source_id,
                "sasl_mechanism",
                f"unsupported value {mechanism!r}",
                fix=" | ".join(_SASL_MECHANISMS),
            )
        if username is None or password is None:
            raise _err(
                source_id,
                "sasl_plain_username" if username is None else "sasl_plain_password",
                f"required with security_protocol {protocol}",
                fix="write the password as ${ENV_VAR}, never literally in the file",
            )
    elif mechanism is not None or username is not None or password is not None:
        raise _err(
            source_id,
            "sasl_mechanism",
            f"SASL settings need security_protocol SASL_PLAINTEXT or SASL_SSL, not {protocol}",
        )
    ssl_files = {
        k: _str(source_id, options, k) for k in ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
    }
    if not protocol.endswith("SSL") and any(ssl_files.values()):
        key = next(k for k, v in ssl_files.items() if v)
        raise _err(source_id, key, f"needs security_protocol SSL or SASL_SSL, not {protocol}")

    session_timeout = _int(source_id, options, "session_timeout_ms", 10_000, 1_000, 3_600_000)
    return KafkaOptions(
        bootstrap_servers=tuple(s.strip() for s in servers),
        topics=tuple(topics),
        group_id=_str(source_id, options, "group_id") or f"astrocyte-{source_id}",
        client_id=_str(source_id, options, "client_id") or f"astrocyte-{source_id}",
        dead_letter_topic=dead_topic,
        batch_size=_int(source_id, options, "batch_size", 500, 1, 10_000),
        poll_timeout_ms=_int(source_id, options, "poll_timeout_ms", 500, 1, 60_000),
        auto_offset_reset=reset,
        session_timeout_ms=session_timeout,
        max_poll_interval_ms=_int(
            source_id, options, "max_poll_interval_ms", 300_000, 1_000, 86_400_000
        ),
        request_timeout_ms=_int(source_id, options, "request_timeout_ms", 40_000, 1_000, 3_600_000),
        security_protocol=protocol,
        sasl_mechanism=mechanism if protocol.startswith("SASL_") else None,
        sasl_plain_username=username,
        sasl_plain_password=password,
        ssl_cafile=ssl_files["ssl_cafile"],
        ssl_certfile=ssl_files["ssl_certfile"],
        ssl_keyfile=ssl_files["ssl_keyfile"],
    )
