"""The short path of JsonBodyRoute answers exactly as FastAPI's generic handler.

Each request is sent twice to one app: once as is (short path where it applies) and
once with a no-op dependency override, which sends every request through FastAPI's
own handler. Status, error bodies and headers must match.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from helpers import ALICE_KEY, api_key_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrocyte_gateway.app import create_app
from astrocyte_gateway.routes.deps import gateway_state

ROUTES = ["/v1/recall", "/v1/retain", "/v1/reflect", "/v1/forget"]


def _normalise(r: httpx.Response) -> tuple[int, Any, list[tuple[str, str]]]:
    try:
        body: Any = r.json()
    except ValueError:
        body = r.text
    if isinstance(body, dict):
        body.pop("elapsed_ms", None)
        for hit in body.get("hits", []) or []:
            hit.pop("elapsed_ms", None)
        body.pop("memory_id", None)
        body.pop("memory_ids", None)
        body.pop("strategies", None)
        body.pop("source_id", None)
    # Timings differ from request to request by nature.
    skip = ("content-length", "server-timing")
    headers = sorted((k, v) for k, v in r.headers.items() if k not in skip)
    return r.status_code, body, headers


async def _both(app, path: str, content: bytes, headers: dict[str, str]):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        app.dependency_overrides.clear()
        fast = await client.post(path, content=content, headers=headers)
        app.dependency_overrides[gateway_state] = gateway_state
        try:
            slow = await client.post(path, content=content, headers=headers)
        finally:
            app.dependency_overrides.clear()
    return _normalise(fast), _normalise(slow)


@pytest.fixture(scope="module")
def app():
    return create_app(api_key_config())


BODIES = [
    b'{"query": "x", "bank_id": "b"}',
    b'{"query": "x", "bank_id": "b", "max_results": 3}',
    b'{"content": "hello", "bank_id": "b"}',
    b'{"bank_id": "b", "memory_ids": ["nope"]}',
    b'{"query": "x", "bank_id": "b", "nope": 1}',
    b'{"query": 1}',
    b'{"query": "x", "bank_id": "Bad Bank!"}',
    b'{"query": "x", "max_results": "lots"}',
    b"[1, 2]",
    b'"x"',
    b"",
    b"{",
    b'{"query": "x",}',
    b'{"query": "a\\ud800", "bank_id": "b"}',
    b'\xef\xbb\xbf{"query": "x", "bank_id": "b"}',
    b'{"query": "x", "query": "y", "bank_id": "b"}',
    b'{"query": "x", "bank_id": "b", "time_range": {"start": "2024-01-02", "end": "2024-01-01"}}',
    b'{"query": "x", "bank_id": "b", "filters": {"k": NaN}}',
    b"\xff\xfe",
]
CONTENT_TYPES = [
    "application/json",
    "Application/JSON",
    "application/json; charset=utf-8",
    "application/merge-patch+json",
    "text/plain",
    None,
]
AUTHS = [{"X-Api-Key": ALICE_KEY}, {}, {"X-Api-Key": "wrong-key-0123456789"}]


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("content_type", CONTENT_TYPES)
@pytest.mark.parametrize("auth", range(len(AUTHS)))
async def test_same_answers(app, path, content_type, auth):
    for body in BODIES:
        headers = {"X-Request-ID": "req-1", **AUTHS[auth]}
        if content_type is not None:
            headers["Content-Type"] = content_type
        fast, slow = await _both(app, path, body, headers)
        assert fast == slow, (path, content_type, auth, body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
fields = st.sampled_from(
    [
        "query",
        "bank_id",
        "banks",
        "max_results",
        "max_tokens",
        "tags",
        "time_range",
        "filters",
        "external_context",
        "now",
        "strategy",
        "min_score",
        "content",
        "memory_ids",
    ]
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.dictionaries(fields, json_values, max_size=5), path=st.sampled_from(ROUTES))
async def test_same_answers_for_any_object(app, body, path):
    headers = {"X-Request-ID": "req-1", "X-Api-Key": ALICE_KEY, "Content-Type": "application/json"}
    fast, slow = await _both(app, path, json.dumps(body).encode(), headers)
    assert fast == slow, (path, body)
