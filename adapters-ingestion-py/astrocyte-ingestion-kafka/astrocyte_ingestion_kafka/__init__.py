"""Kafka stream ingest for Astrocyte (``sources.<name>: {type: stream, driver: kafka}``).

:class:`KafkaDriver` consumes topics in a consumer group with manual commits: a batch
is retained (idempotently, keyed ``<source>:<topic>/<partition>/<offset>``), its poison
messages are published to a dead-letter topic, and only then are its offsets
committed. See the package README for options and delivery semantics.
"""

from astrocyte_ingestion_kafka.driver import (
    DEAD_LETTER_HEADERS,
    KafkaDriver,
    KafkaDriverStats,
    to_stream_record,
)
from astrocyte_ingestion_kafka.options import KafkaOptions, parse_options

__all__ = [
    "DEAD_LETTER_HEADERS",
    "KafkaDriver",
    "KafkaDriverStats",
    "KafkaOptions",
    "parse_options",
    "to_stream_record",
]
