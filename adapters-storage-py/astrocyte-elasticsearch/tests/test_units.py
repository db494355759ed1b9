"""Pure-Python parts: options, encoding, media types, entry points (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib.metadata import entry_points

import pytest
from astrocyte.errors import ConfigError
from astrocyte.spi import SPI_VERSION, DocumentStore, metadata_equal

from astrocyte_elasticsearch import ElasticsearchDocumentStore, OpenSearchDocumentStore
from astrocyte_elasticsearch._encoding import keyword, micros, tagged
from astrocyte_elasticsearch._transport import plain_mimetype


def test_constructor_does_no_io_and_strips_url_credentials() -> None:
    """Construction never connects; credentials in the URL move out of it."""
    store = ElasticsearchDocumentStore(url="http://user:s3cret@127.0.0.1:1/", timeout_s="3")
    assert isinstance(store, DocumentStore)
    assert "s3cret" not in repr(store)
    assert store._options.username == "user"
    assert store._options.password == "s3cret"
    assert store._options.url == "http://127.0.0.1:1"
    assert store._options.timeout_s == 3.0


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({}, "url"),
        ({"url": "ftp://x"}, "url"),
        ({"url": "http://h:9200", "index_prefix": "Bad Prefix"}, "index_prefix"),
        ({"url": "http://h:9200", "refresh": "sometimes"}, "refresh"),
        ({"url": "http://h:9200", "timeout_s": 0}, "timeout_s"),
        ({"url": "http://h:9200", "timeout_s": "soon"}, "timeout_s"),
        ({"url": "http://h:9200", "username": "u"}, "password"),
        ({"url": "http://h:9200", "api_key": "k", "username": "u", "password": "p"}, "api_key"),
        ({"url": "http://h:9200", "flavor": "solr"}, "flavor"),
        ({"url": "http://h:9200", "analysis": "magic"}, "analysis"),
        ({"url": "http://h:9200", "verify_certs": "maybe"}, "verify_certs"),
        ({"url": "http://h:9200", "refresh_interval": "soon"}, "refresh_interval"),
    ],
)
def test_bad_options_name_the_key(options: dict[str, object], key: str) -> None:
    """Every bad option is a ConfigError naming that option."""
    with pytest.raises(ConfigError) as info:
        ElasticsearchDocumentStore(**options)  # type: ignore[arg-type]
    assert info.value.key == key


def test_yaml_scalars_are_accepted() -> None:
    """Options arrive as plain strings/bools from YAML."""
    store = ElasticsearchDocumentStore(
        url="https://h:9243", refresh=True, verify_certs="false", flavor="OpenSearch"
    )
    assert store._options.refresh == "true"
    assert store._options.verify_certs is False
    assert store.flavor == "opensearch"
    assert OpenSearchDocumentStore(url="http://h:9200").flavor == "opensearch"


@pytest.mark.parametrize(
    ("a", "b"),
    [(True, 1), (False, 0), (1, "1"), (None, ""), (None, 0), (2**53 + 1, float(2**53)), ("a", "b")],
)
def test_tagged_values_differ_exactly_when_metadata_differs(a: object, b: object) -> None:
    """The type-tagged keyword equality is the core's metadata_equal."""
    assert not metadata_equal(a, b)  # type: ignore[arg-type]
    assert tagged(a) != tagged(b)  # type: ignore[arg-type]


@pytest.mark.parametrize(("a", "b"), [(1, 1.0), (0, -0.0), (2.5, 2.5), (-(2**53), float(-(2**53)))])
def test_tagged_values_equal_when_metadata_equal(a: object, b: object) -> None:
    """1 and 1.0 share one keyword, as metadata_equal says."""
    assert metadata_equal(a, b)  # type: ignore[arg-type]
    assert tagged(a) == tagged(b)  # type: ignore[arg-type]


def test_long_keywords_become_digests_and_micros_are_exact() -> None:
    """Over-long keyword values are hashed (exact equality kept); times keep microseconds."""
    long_tag = "t" * 5000
    assert keyword(long_tag) == keyword(long_tag) != keyword(long_tag + "x")
    assert len(keyword(long_tag).encode()) < 100
    assert keyword("short") == "short"
    base = datetime(1900, 1, 1, tzinfo=UTC)
    assert micros(base + timedelta(microseconds=1)) - micros(base) == 1


def test_compat_media_types_become_plain() -> None:
    """The ES 8 client's compatibility media types are rewritten for OpenSearch."""
    assert plain_mimetype("application/vnd.elasticsearch+json; compatible-with=8") == (
        "application/json"
    )
    assert plain_mimetype("application/vnd.elasticsearch+x-ndjson; compatible-with=8") == (
        "application/x-ndjson"
    )
    assert plain_mimetype("application/json") == "application/json"


def test_entry_points_load_the_store() -> None:
    """Both providers resolve to store classes declaring the core's SPI version."""
    found = {ep.name: ep for ep in entry_points(group="astrocyte.document_stores")}
    assert found["elasticsearch"].load() is ElasticsearchDocumentStore
    assert found["opensearch"].load() is OpenSearchDocumentStore
    assert ElasticsearchDocumentStore.SPI_VERSION == SPI_VERSION
