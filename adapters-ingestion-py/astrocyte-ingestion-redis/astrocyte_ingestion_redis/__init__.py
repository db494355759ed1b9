"""Redis Streams ingest driver for Astrocyte (``driver: redis``).

Consumes one or more streams with a consumer group and retains every entry through
:class:`astrocyte.ingest.stream.StreamIngestor`: entries are acknowledged (``XACK``)
only after they were retained or dead-lettered, so delivery is at-least-once, and the
idempotency key ``<source>:<stream>/<entry id>`` makes a redelivery store nothing.
"""

from astrocyte_ingestion_redis.driver import DriverCounters, RedisStreamsDriver, entry_record
from astrocyte_ingestion_redis.options import RedisStreamsOptions

__all__ = ["DriverCounters", "RedisStreamsDriver", "RedisStreamsOptions", "entry_record"]
__version__ = "0.1.0"
