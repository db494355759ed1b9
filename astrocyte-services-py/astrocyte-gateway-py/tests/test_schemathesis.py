"""Property-based API tests: Schemathesis against the committed ``openapi.json`` on a
real gateway (uvicorn on loopback, from the ``gateway_server`` fixture).

For every operation of the committed spec, Schemathesis generates valid and invalid
requests (paths, bodies, headers) and sends them with a valid API key. Each response
must be no 5xx, have a status the spec documents for that operation, the documented
content type and headers, and a body matching the documented schema; secured
operations must refuse the same request sent without the key. A second test checks
each secured operation's 401 error shape. The spec file, not the running app's
``/openapi.json``, is the contract clients generate code from: a route that answers
something the committed spec does not describe fails here.

Examples are limited (``EXAMPLES`` per operation, derandomized, no example database)
so the module stays well under a minute on two cores.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

SPEC = Path(__file__).resolve().parent.parent / "openapi.json"
API_KEY = "schemathesis-key-0123456789abcdef"
WEBHOOK_SECRET = "schemathesis-webhook-secret-0123"
EXAMPLES = 25

# Memory store and hashing embedder: fast, and nothing on disk. The caller is an admin
# so the admin routes are exercised past their 403; the webhook source gives the
# webhook route a real source to reject unsigned deliveries for.
CONFIG: dict[str, Any] = {
    "storage": {"backend": "memory"},
    "embedder": {"provider": "hashing"},
    "deployment": {"mode": "standalone"},
    "gateway": {
        "admin_principals": ["user:fuzzer"],
        "auth": {"mode": "api_key", "api_keys": [{"key": API_KEY, "principal": "user:fuzzer"}]},
    },
    "sources": {"hooks": {"type": "webhook", "secret": WEBHOOK_SECRET}},
}

CHECKS = [
    not_a_server_error,
    ignored_auth,  # re-sends secured requests without the key: must be refused
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_path(SPEC)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=EXAMPLES,
    deterministic=True,
    # The key is supplied by the test; generated (random) credentials would only
    # exercise the 401 path, which test_secured_operations_refuse_anonymous covers.
    with_security_parameters=False,
    database="none",
)

_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # One server per operation (the fixture is function-scoped), shared by that
    # operation's examples.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture
def base_url(gateway_server: Callable[..., str]) -> str:
    """A fresh gateway for one operation's examples."""
    return gateway_server(CONFIG)


@schema.parametrize()
@_SETTINGS
def test_responses_conform_to_committed_spec(case: schemathesis.Case[Any], base_url: str) -> None:
    """Authenticated requests, valid and invalid: no 5xx, every response as documented."""
    case.call_and_validate(
        base_url=base_url, headers={"X-Api-Key": API_KEY}, checks=CHECKS, timeout=30
    )


def _secured_operations() -> list[tuple[str, str]]:
    spec = json.loads(SPEC.read_text())
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if operation.get("security")
    ]


@pytest.mark.parametrize(("method", "path"), _secured_operations())
def test_secured_operations_refuse_anonymous(method: str, path: str, base_url: str) -> None:
    """Every operation the spec secures answers 401 in the documented error shape when
    the request carries no credentials, before looking at the body."""
    body: dict[str, Any] | None = {} if method == "POST" else None
    response = httpx.request(method, base_url + path, json=body, timeout=30)
    assert response.status_code == 401, (response.status_code, response.text[:300])
    error = response.json()["error"]
    assert error["code"] == "unauthenticated"
    assert error["request_id"] == response.headers["x-request-id"]
