"""JWT auth end to end: the real gateway (uvicorn, ``gateway_server`` fixture) verifying
tokens against the local identity provider (a second uvicorn), driven with httpx."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from jwt_helpers import (
    AUDIENCE,
    HS_SECRET,
    LocalIdP,
    claims,
    free_port,
    hmac_token,
    mint,
    oidc_auth,
    rsa_key,
    unsigned_token,
)

Start = Callable[..., str]

GRANTS = [
    {"principals": ["agent:bot"], "banks": ["user-*"], "permissions": ["read", "write"]},
    {"principals": ["user:*"], "banks": ["user-{id}"], "permissions": ["admin"]},
]


def gateway_config(auth: dict[str, Any]) -> dict[str, Any]:
    """A standalone gateway (memory stores, hashing embedder) with ``auth`` and grants."""
    return {
        "storage": {"backend": "memory"},
        "embedder": {"provider": "hashing"},
        "deployment": {"mode": "standalone"},
        "gateway": {"auth": auth},
        "access_grants": GRANTS,
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_oidc_tokens_through_the_running_gateway(
    gateway_server: Start, idp: LocalIdP
) -> None:
    url = gateway_server(gateway_config(oidc_auth(idp)))
    key = rsa_key("rsa-1")
    alice = mint(key, claims(idp.issuer, sub="alice"))
    bot_for_alice = mint(key, claims(idp.issuer, sub="agent:bot", obo="alice"))
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.post(
            "/v1/retain",
            json={"content": "alice likes tea", "bank_id": "user-alice"},
            headers=bearer(alice),
        )
        assert r.status_code == 200, r.text

        # Delegation: the bot may write user-*, alice only user-alice → only user-alice.
        r = await client.post(
            "/v1/recall",
            json={"query": "tea", "bank_id": "user-alice"},
            headers=bearer(bot_for_alice),
        )
        assert r.status_code == 200, r.text
        assert r.json()["hits"]
        r = await client.post(
            "/v1/retain",
            json={"content": "bob likes coffee", "bank_id": "user-bob"},
            headers=bearer(bot_for_alice),
        )
        assert r.status_code == 403, r.text

        for headers in (
            {},
            bearer(unsigned_token(claims(idp.issuer))),
            bearer(mint(key, claims(idp.issuer, aud="someone-else"))),
            bearer(mint(key, claims(idp.issuer, exp=int(time.time()) - 3600))),
            bearer(hmac_token(claims(idp.issuer), key.public_pem(), kid=key.kid)),
        ):
            r = await client.post(
                "/v1/recall", json={"query": "tea", "bank_id": "user-alice"}, headers=headers
            )
            assert r.status_code == 401, r.text
            assert r.json()["error"]["code"] == "unauthenticated"
            assert r.headers["www-authenticate"].startswith("Bearer")
            token = headers.get("Authorization", "Bearer ").removeprefix("Bearer ")
            assert not token or token.split(".")[1] not in r.text
    # Discovery and JWKS fetched once for the whole session (the cache is per gateway).
    assert idp.hits == {"discovery": 1, "jwks": 1}


async def test_identity_provider_down_is_503_through_the_gateway(
    gateway_server: Start, idp: LocalIdP
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    url = gateway_server(gateway_config(oidc_auth(idp, jwks_url=f"{dead}/jwks")))
    token = mint(rsa_key("rsa-1"), claims(idp.issuer))
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.post(
            "/v1/recall", json={"query": "tea", "bank_id": "user-alice"}, headers=bearer(token)
        )
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "auth_unavailable"
    assert dead not in r.text


async def test_hs256_through_the_gateway(gateway_server: Start) -> None:
    auth = {"mode": "jwt_hs256", "secret": HS_SECRET, "issuer": "tests", "audience": AUDIENCE}
    url = gateway_server(gateway_config(auth))
    good = hmac_token(claims("tests", sub="bob"), HS_SECRET.encode())
    forged = hmac_token(claims("tests", sub="bob"), b"not-the-secret-not-the-secret-!!")
    async with httpx.AsyncClient(base_url=url) as client:
        body = {"content": "bob's note", "bank_id": "user-bob"}
        r = await client.post("/v1/retain", json=body, headers=bearer(good))
        assert r.status_code == 200, r.text
        r = await client.post("/v1/retain", json=body, headers=bearer(forged))
        assert r.status_code == 401, r.text
