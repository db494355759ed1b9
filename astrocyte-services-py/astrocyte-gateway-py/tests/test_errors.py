"""Auth failures and the error shape / status of each mapped error, over HTTP."""

from __future__ import annotations

import httpx
from astrocyte import Astrocyte
from astrocyte.config import load_config
from astrocyte.errors import ProviderUnavailable
from astrocyte.stores.memory import InMemoryDocumentStore, InMemoryGraphStore, InMemoryVectorStore
from astrocyte.stores.storeset import StoreSet
from helpers import ALICE_KEY, BOB_KEY, api_key_config, h


def _err(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code, err
    assert err["request_id"] == r.headers["x-request-id"]
    assert set(err) >= {"code", "message", "request_id"}
    return err


async def test_auth_failures(gateway_server):
    url = gateway_server(api_key_config())
    body = {"query": "x", "bank_id": "b"}
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.post("/v1/recall", json=body)
        _err(r, 401, "unauthenticated")
        assert r.headers["www-authenticate"] == "Bearer"
        _err(
            await client.post("/v1/recall", json=body, headers=h("wrong" * 5)),
            401,
            "unauthenticated",
        )
        # The SHA-256 of a key is not a key.
        import hashlib

        digest = hashlib.sha256(BOB_KEY.encode()).hexdigest()
        _err(await client.post("/v1/recall", json=body, headers=h(digest)), 401, "unauthenticated")
        # Authorization: Bearer works as well as the header.
        r = await client.post(
            "/v1/retain",
            json={"content": "hi", "bank_id": "b"},
            headers={"Authorization": f"Bearer {ALICE_KEY}"},
        )
        assert r.status_code == 200, r.text


async def test_mapped_library_errors(gateway_server):
    config = api_key_config(
        banks={"auto_create": False},
        access_grants=[
            {"principals": ["user:alice"], "banks": ["*"], "permissions": ["admin"]},
            {"principals": ["user:bob"], "banks": ["bob-*"], "permissions": ["read"]},
        ],
        limits={"max_content_bytes": 100},
        policy={
            "rate_limits": {"recall": {"per_principal": {"rate": 0.01, "burst": 1}}},
            "quotas": {"max_memories_per_bank": 1},
        },
    )
    url = gateway_server(config)
    async with httpx.AsyncClient(base_url=url) as client:
        # 404: bank does not exist and auto_create is off.
        _err(
            await client.post("/v1/retain", json={"content": "x", "bank_id": "nope"}, headers=h()),
            404,
            "bank_not_found",
        )
        # 403: no grant.
        _err(
            await client.post(
                "/v1/recall", json={"query": "x", "bank_id": "alice-1"}, headers=h(BOB_KEY)
            ),
            403,
            "access_denied",
        )
        # 422: library validation (bad bank id) and request-model validation.
        err = _err(
            await client.post(
                "/v1/recall", json={"query": "x", "bank_id": "no/slash"}, headers=h()
            ),
            422,
            "validation_error",
        )
        assert "bank_id" in err["message"]
        err = _err(
            await client.post("/v1/recall", json={"bank_id": "b", "bogus": 1}, headers=h()),
            422,
            "validation_error",
        )
        assert {tuple(d["loc"]) for d in err["details"]} >= {("body", "query"), ("body", "bogus")}
        # 400: malformed JSON.
        _err(
            await client.post(
                "/v1/recall",
                content=b"{not json",
                headers={**h(), "content-type": "application/json"},
            ),
            400,
            "malformed_json",
        )
        # 413: library content limit.
        _err(
            await client.post(
                "/v1/retain", json={"content": "x" * 500, "bank_id": "b"}, headers=h()
            ),
            413,
            "payload_too_large",
        )
        # 429 with Retry-After: one recall per 100 s.
        # (bank_not_found still consumes the principal's token, so use a fresh call.)
        r1 = await client.post("/v1/recall", json={"query": "x", "bank_id": "nope"}, headers=h())
        r2 = await client.post("/v1/recall", json={"query": "x", "bank_id": "nope"}, headers=h())
        codes = {r1.status_code, r2.status_code}
        assert 429 in codes, (r1.text, r2.text)
        limited = r1 if r1.status_code == 429 else r2
        _err(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
        # 404 for unknown routes, 405 for wrong methods, in the same shape.
        _err(await client.get("/v1/nothing"), 404, "not_found")
        _err(await client.get("/v1/retain", headers=h()), 405, "method_not_allowed")


async def test_quota_exceeded_is_403(gateway_server):
    config = api_key_config(policy={"quotas": {"max_memories_per_bank": 1}})
    url = gateway_server(config)
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.post("/v1/retain", json={"content": "one", "bank_id": "q"}, headers=h())
        assert r.status_code == 200, r.text
        _err(
            await client.post("/v1/retain", json={"content": "two", "bank_id": "q"}, headers=h()),
            403,
            "quota_exceeded",
        )


def _brain_with(docs: InMemoryDocumentStore) -> Astrocyte:
    config = load_config(api_key_config(recall={"strategies": ["keyword"]}))
    return Astrocyte(
        config,
        stores=StoreSet(documents=docs, vectors=InMemoryVectorStore(), graph=InMemoryGraphStore()),
    )


async def test_unexpected_errors_are_generic_500(gateway_server):
    brain = _brain_with(InMemoryDocumentStore())

    async def boom(*args, **kwargs):
        raise RuntimeError("secret path /etc/keys and token sk-123")

    brain.forget = boom  # type: ignore[method-assign]
    url = gateway_server(brain=brain)
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.post("/v1/forget", json={"bank_id": "b", "tags": ["x"]}, headers=h())
        err = _err(r, 500, "internal_error")
        assert "sk-123" not in r.text and "Traceback" not in r.text
        assert "request id" in err["message"]

        async def unavailable(*args, **kwargs):
            raise ProviderUnavailable("qdrant", "10.0.0.7 down")

        brain.forget = unavailable  # type: ignore[method-assign]
        r = await client.post("/v1/forget", json={"bank_id": "b", "tags": ["x"]}, headers=h())
        _err(r, 503, "provider_unavailable")
        assert "10.0.0.7" not in r.text

    await brain.close()
