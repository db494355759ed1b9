"""GitHub issues (and comments) poll driver for Astrocyte ingest.

Configured as a ``poll`` source with ``driver: github`` (the entry point of
:data:`astrocyte.ingest.supervisor.DRIVER_ENTRY_POINT_GROUP`); see the README for the
options and the delivery semantics.
"""

from astrocyte_ingestion_github.cursor import CursorFileError, CursorStore, StreamCursor
from astrocyte_ingestion_github.driver import (
    DEFAULT_BASE_URL,
    GitHubAPIError,
    GitHubIssuesDriver,
    GitHubOptions,
)
from astrocyte_ingestion_github.records import comment_record, issue_record

__all__ = [
    "DEFAULT_BASE_URL",
    "CursorFileError",
    "CursorStore",
    "GitHubAPIError",
    "GitHubIssuesDriver",
    "GitHubOptions",
    "StreamCursor",
    "comment_record",
    "issue_record",
]

__version__ = "0.1.0"
