"""JWT authentication against a real local identity provider (uvicorn on 127.0.0.1).

Keys are generated in-test with ``cryptography``, tokens signed with PyJWT (or by hand
for the attacks PyJWT refuses to produce), and the JWKS is served over HTTP by
:class:`jwt_helpers.LocalIdP`, whose fetch counters prove caching and rate limiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from astrocyte import Astrocyte
from astrocyte.errors import AccessDenied
from astrocyte.identity.patterns import Permission
from jwt_helpers import (
    AUDIENCE,
    HS_SECRET,
    FakeClock,
    LocalIdP,
    b64json,
    bearer,
    claims,
    ec_key,
    free_port,
    hmac_token,
    make_config,
    mint,
    oidc_auth,
    rsa_key,
    unsigned_token,
)

from astrocyte_gateway.auth import AuthError, Caller, build_authenticator
from astrocyte_gateway.auth.jwks import FAILURE_RETRY_SECONDS, UNKNOWN_KID_REFETCH_SECONDS
from astrocyte_gateway.auth.jwt import JwtAuthenticator

AuthFactory = Callable[..., JwtAuthenticator]


@pytest.fixture
async def make_auth(idp: LocalIdP) -> AsyncIterator[AuthFactory]:
    """Builds OIDC authenticators for ``idp`` (auth overrides as keywords; ``clock``,
    ``jwks_timeout`` and ``config_sections`` pass through) and closes them afterwards."""
    made: list[JwtAuthenticator] = []

    def factory(
        clock: FakeClock | None = None,
        jwks_timeout: float = 5.0,
        config_sections: dict[str, Any] | None = None,
        **auth: Any,
    ) -> JwtAuthenticator:
        config = make_config(oidc_auth(idp, **auth), **(config_sections or {}))
        built = build_authenticator(config)
        assert isinstance(built, JwtAuthenticator)
        # Rebuilt with the test clock/timeout; build_authenticator is proven to pick us.
        authenticator = JwtAuthenticator(config, clock=clock, jwks_timeout=jwks_timeout)
        made.append(authenticator)
        return authenticator

    yield factory
    for authenticator in made:
        await authenticator.close()


async def refused(auth: JwtAuthenticator, token: str, status: int = 401) -> AuthError:
    """The AuthError ``token`` gets; also checks no token material leaks into it."""
    with pytest.raises(AuthError) as caught:
        await auth.authenticate(bearer(token))
    error = caught.value
    assert error.status == status
    text = f"{error.message} {error} {error.code}"
    for segment in token.split("."):
        if len(segment) >= 8:
            assert segment not in text
    return error


# --- accepted tokens -------------------------------------------------------------------


async def test_valid_rs256_token_accepted(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth()
    caller = await auth.authenticate(bearer(mint(rsa_key("rsa-1"), claims(idp.issuer))))
    assert isinstance(caller, Caller)
    assert caller.principal == "user:alice"
    assert caller.method == "jwt_oidc"
    assert caller.is_admin is False
    assert caller.context.principal == "user:alice"
    assert caller.context.on_behalf_of is None
    assert caller.context.tenant is None
    assert caller.context.actor is not None
    assert caller.context.actor.claims["aud"] == AUDIENCE
    assert caller.context.actor.claims["iss"] == idp.issuer
    assert idp.hits == {"discovery": 1, "jwks": 1}


async def test_valid_es256_token_accepted(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth()
    token = mint(ec_key("ec-1"), claims(idp.issuer, sub="agent:support-bot"))
    caller = await auth.authenticate(bearer(token))
    assert caller.principal == "agent:support-bot"
    assert caller.context.acting is not None and caller.context.acting.type == "agent"


async def test_jwks_url_configured_skips_discovery(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth(jwks_url=idp.jwks_url)
    await auth.authenticate(bearer(mint(rsa_key("rsa-1"), claims(idp.issuer))))
    assert idp.hits == {"jwks": 1}


async def test_bearer_scheme_is_case_insensitive(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth()
    token = mint(rsa_key("rsa-1"), claims(idp.issuer))
    caller = await auth.authenticate({"authorization": f"bearer   {token} "})
    assert caller.principal == "user:alice"


async def test_token_without_kid_verified_by_a_key_of_its_type(
    idp: LocalIdP, make_auth: AuthFactory
) -> None:
    idp.publish(rsa_key("rsa-2"), rsa_key("rsa-1"), ec_key("ec-1"))
    auth = make_auth()
    token = mint(rsa_key("rsa-1"), claims(idp.issuer), kid=None)
    assert (await auth.authenticate(bearer(token))).principal == "user:alice"


# --- refused tokens --------------------------------------------------------------------


async def test_expired_token_refused(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth()
    now = int(time.time())
    token = mint(rsa_key("rsa-1"), claims(idp.issuer, iat=now - 600, nbf=now - 600, exp=now - 120))
    assert "expired" in (await refused(auth, token)).message


async def test_not_yet_valid_token_refused(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth()
    token = mint(rsa_key("rsa-1"), claims(idp.issuer, nbf=int(time.time()) + 120))
    assert "not yet valid" in (await refused(auth, token)).message


async def test_iat_in_the_future_refused(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth()
    token = mint(rsa_key("rsa-1"), claims(idp.issuer, iat=int(time.time()) + 3600))
    assert "not yet valid" in (await refused(auth, token)).message


async def test_malformed_iat_refused(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth()
    token = mint(rsa_key("rsa-1"), claims(idp.issuer, iat="yesterday"))
    await refused(auth, token)


async def test_token_without_exp_refused(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth()
    token = mint(rsa_key("rsa-1"), claims(idp.issuer, exp=None))
    assert "required claim" in (await refused(auth, token)).message


async def test_wrong_audience_refused(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth()
    await refused(auth, mint(rsa_key("rsa-1"), claims(idp.issuer, aud="another-app")))
    error = await refused(auth, mint(rsa_key("rsa-1"), claims(idp.issuer, aud=None)))
    assert "required claim" in error.message


async def test_audience_list_containing_ours_accepted(
    idp: LocalIdP, make_auth: AuthFactory
) -> None:
    auth = make_auth()
    token = mint(rsa_key("rsa-1"), claims(idp.issuer, aud=["other", AUDIENCE]))
    assert (await auth.authenticate(bearer(token))).principal == "user:alice"


async def test_wrong_issuer_refused(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth()
    error = await refused(auth, mint(rsa_key("rsa-1"), claims("https://evil.example.com/")))
    assert "issuer" in error.message
    await refused(auth, mint(rsa_key("rsa-1"), claims(idp.issuer, iss=None)))


async def test_alg_none_refused(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth()
    for alg in ("none", "None", "NONE"):
        error = await refused(auth, unsigned_token(claims(idp.issuer), alg=alg))
        assert "algorithm" in error.message
    assert idp.hits == {}  # refused before any key was needed


async def test_hs256_token_in_oidc_mode_refused(idp: LocalIdP, make_auth: AuthFactory) -> None:
    """The classic key confusion: HMAC-sign with the provider's public key as secret."""
    auth = make_auth()
    pair = rsa_key("rsa-1")
    for secret in (pair.public_pem(), b64json(pair.jwk).encode()):
        token = hmac_token(claims(idp.issuer), secret, kid=pair.kid)
        assert "algorithm" in (await refused(auth, token)).message


async def test_algorithm_outside_allow_list_refused(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth(algorithms=["RS256"])
    await refused(auth, mint(ec_key("ec-1"), claims(idp.issuer)))
    ps = mint(rsa_key("rsa-1", "PS256"), claims(idp.issuer))  # same RSA key, PS256
    await refused(auth, ps)


async def test_algorithm_must_fit_the_key(idp: LocalIdP, make_auth: AuthFactory) -> None:
    # The JWK declares RS256; a PS256 token claiming that kid must not verify with it.
    auth = make_auth(algorithms=["RS256", "PS256"])
    token = mint(rsa_key("rsa-1", "PS256"), claims(idp.issuer), kid="rsa-1")
    assert "unknown" in (await refused(auth, token)).message


async def test_tampered_payload_refused(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth()
    header, _, signature = mint(rsa_key("rsa-1"), claims(idp.issuer)).split(".")
    forged = f"{header}.{b64json(claims(idp.issuer, sub='user:mallory'))}.{signature}"
    assert "signature" in (await refused(auth, forged)).message


async def test_tampered_signature_refused(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth()
    for pair in (rsa_key("rsa-1"), ec_key("ec-1")):
        header, payload, signature = mint(pair, claims(idp.issuer)).split(".")
        flipped = ("A" if signature[10] != "A" else "B").join((signature[:10], signature[11:]))
        await refused(auth, f"{header}.{payload}.{flipped}")


async def test_token_signed_by_a_stranger_refused(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth()
    impostor = rsa_key("impostor")
    await refused(auth, mint(impostor, claims(idp.issuer), kid="rsa-1"))


async def test_crit_header_refused(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth()
    # PyJWT already refuses crit it does not implement ("malformed"); our own check
    # backs that up for any extension a future PyJWT might learn.
    for crit in (["exp"], ["b64"], ["https://example.com/ext"]):
        token = mint(rsa_key("rsa-1"), claims(idp.issuer), crit=crit)
        await refused(auth, token)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": ""},
        {"authorization": "Bearer"},
        {"authorization": "Basic YWxpY2U6c2VjcmV0"},
        {"authorization": "Bearer a b"},
        {"authorization": "Bearer not-a-jwt"},
        {"authorization": "Bearer " + "a" * 20_000},
    ],
)
async def test_missing_or_malformed_credentials_refused(
    make_auth: AuthFactory, headers: dict[str, str]
) -> None:
    auth = make_auth()
    with pytest.raises(AuthError) as caught:
        await auth.authenticate(headers)
    assert caught.value.status == 401
    assert caught.value.code == "unauthenticated"


# --- JWKS: unknown kid, rotation, caching -----------------------------------------------


async def test_unknown_kid_refused_after_one_refetch(idp: LocalIdP, make_auth: AuthFactory) -> None:
    clock = FakeClock()
    auth = make_auth(clock=clock)
    await auth.authenticate(bearer(mint(rsa_key("rsa-1"), claims(idp.issuer))))
    assert idp.hits["jwks"] == 1
    stranger = rsa_key("never-published")
    error = await refused(auth, mint(stranger, claims(idp.issuer)))
    assert "unknown" in error.message
    assert idp.hits["jwks"] == 2  # exactly one refetch
    for _ in range(5):  # a flood of made-up kids does not hammer the provider
        await refused(auth, mint(stranger, claims(idp.issuer)))
        await refused(auth, mint(stranger, claims(idp.issuer), kid="made-up"))
    assert idp.hits["jwks"] == 2
    clock.advance(UNKNOWN_KID_REFETCH_SECONDS + 1)
    await refused(auth, mint(stranger, claims(idp.issuer)))
    assert idp.hits["jwks"] == 3  # one more a minute later


async def test_key_rotation_accepted_after_refetch_without_restart(
    idp: LocalIdP, make_auth: AuthFactory
) -> None:
    clock = FakeClock()
    auth = make_auth(clock=clock, jwks_cache_seconds=3600)
    old, new = rsa_key("rsa-1"), rsa_key("rsa-2")
    await auth.authenticate(bearer(mint(old, claims(idp.issuer))))
    idp.publish(old, new)  # the provider publishes the new key next to the old one
    caller = await auth.authenticate(bearer(mint(new, claims(idp.issuer, sub="bob"))))
    assert caller.principal == "user:bob"
    assert idp.hits["jwks"] == 2
    await auth.authenticate(bearer(mint(old, claims(idp.issuer))))  # both served from cache
    await auth.authenticate(bearer(mint(new, claims(idp.issuer))))
    assert idp.hits["jwks"] == 2
    # The old key is retired: refused once the cache expires and the new set is fetched.
    idp.publish(new)
    clock.advance(3601)
    await refused(auth, mint(old, claims(idp.issuer)))
    assert idp.hits["jwks"] == 3
    assert (await auth.authenticate(bearer(mint(new, claims(idp.issuer))))).principal


async def test_jwks_cached_for_cache_seconds(idp: LocalIdP, make_auth: AuthFactory) -> None:
    clock = FakeClock()
    auth = make_auth(clock=clock, jwks_cache_seconds=120)
    for i in range(10):
        pair = rsa_key("rsa-1") if i % 2 else ec_key("ec-1")
        await auth.authenticate(bearer(mint(pair, claims(idp.issuer))))
    assert idp.hits == {"discovery": 1, "jwks": 1}
    clock.advance(119)
    await auth.authenticate(bearer(mint(rsa_key("rsa-1"), claims(idp.issuer))))
    assert idp.hits["jwks"] == 1
    clock.advance(2)
    for _ in range(3):
        await auth.authenticate(bearer(mint(rsa_key("rsa-1"), claims(idp.issuer))))
    assert idp.hits == {"discovery": 1, "jwks": 2}  # discovery result is kept


async def test_cache_seconds_zero_fetches_every_time(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth(jwks_cache_seconds=0)
    for _ in range(3):
        await auth.authenticate(bearer(mint(rsa_key("rsa-1"), claims(idp.issuer))))
    assert idp.hits["jwks"] == 3


async def test_concurrent_requests_share_one_fetch(idp: LocalIdP, make_auth: AuthFactory) -> None:
    idp.delay = 0.3
    auth = make_auth()
    tokens = [mint(rsa_key("rsa-1"), claims(idp.issuer, sub=f"user-{i}")) for i in range(25)]
    callers = await asyncio.gather(*(auth.authenticate(bearer(t)) for t in tokens))
    assert {c.principal for c in callers} == {f"user:user-{i}" for i in range(25)}
    assert idp.hits == {"discovery": 1, "jwks": 1}


async def test_concurrent_rotation_shares_one_refetch(
    idp: LocalIdP, make_auth: AuthFactory
) -> None:
    auth = make_auth(clock=FakeClock())
    await auth.authenticate(bearer(mint(rsa_key("rsa-1"), claims(idp.issuer))))
    idp.publish(rsa_key("rsa-1"), rsa_key("rsa-2"))
    idp.delay = 0.3
    tokens = [mint(rsa_key("rsa-2"), claims(idp.issuer)) for _ in range(10)]
    callers = await asyncio.gather(*(auth.authenticate(bearer(t)) for t in tokens))
    assert len(callers) == 10  # every one accepted, none refused while the fetch ran
    assert idp.hits["jwks"] == 2


async def test_cancelled_request_does_not_break_the_shared_fetch(
    idp: LocalIdP, make_auth: AuthFactory
) -> None:
    idp.delay = 0.3
    auth = make_auth()
    token = mint(rsa_key("rsa-1"), claims(idp.issuer))
    first = asyncio.ensure_future(auth.authenticate(bearer(token)))
    second = asyncio.ensure_future(auth.authenticate(bearer(token)))
    await asyncio.sleep(0.1)
    first.cancel()  # e.g. the client disconnected
    assert (await second).principal == "user:alice"
    assert idp.hits["jwks"] == 1


async def test_unusable_jwks_entries_ignored(idp: LocalIdP, make_auth: AuthFactory) -> None:
    idp.publish(
        rsa_key("rsa-1"),
        extra=[
            {"kty": "oct", "kid": "hmac", "k": b64json("secret")},  # never a verifier
            {**rsa_key("enc").jwk, "use": "enc"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            {"kty": "EC", "kid": "odd-curve", "crv": "P-999", "x": "AA", "y": "AA"},
            "not an object",
        ],
    )
    auth = make_auth()
    await auth.authenticate(bearer(mint(rsa_key("rsa-1"), claims(idp.issuer))))
    await refused(auth, mint(rsa_key("enc"), claims(idp.issuer)))
    await refused(auth, hmac_token(claims(idp.issuer), b"secret", kid="hmac"))


# --- identity provider outages -----------------------------------------------------------


async def test_jwks_server_down_is_503_auth_unavailable(
    idp: LocalIdP, make_auth: AuthFactory
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    auth = make_auth(jwks_url=f"{dead}/jwks")
    token = mint(rsa_key("rsa-1"), claims(idp.issuer))
    error = await refused(auth, token, status=503)
    assert error.code == "auth_unavailable"
    assert dead not in error.message  # infrastructure details stay in the logs


async def test_discovery_down_is_503(idp: LocalIdP, make_auth: AuthFactory) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    auth = make_auth(issuer=dead)
    error = await refused(auth, mint(rsa_key("rsa-1"), claims(dead)), status=503)
    assert error.code == "auth_unavailable"


async def test_jwks_server_error_or_garbage_is_503(idp: LocalIdP, make_auth: AuthFactory) -> None:
    clock = FakeClock()
    auth = make_auth(clock=clock)
    idp.status = 500
    token = mint(rsa_key("rsa-1"), claims(idp.issuer))
    assert (await refused(auth, token, status=503)).code == "auth_unavailable"
    idp.status = 200
    idp.discovery_issuer = "https://someone-else.example.com/"
    clock.advance(FAILURE_RETRY_SECONDS + 1)
    assert (await refused(auth, token, status=503)).code == "auth_unavailable"


async def test_jwks_timeout_is_503(idp: LocalIdP, make_auth: AuthFactory) -> None:
    idp.delay = 2.0
    auth = make_auth(jwks_timeout=0.3)
    started = time.monotonic()
    await refused(auth, mint(rsa_key("rsa-1"), claims(idp.issuer)), status=503)
    assert time.monotonic() - started < 1.5


async def test_outage_fails_fast_then_recovers(idp: LocalIdP, make_auth: AuthFactory) -> None:
    clock = FakeClock()
    auth = make_auth(clock=clock)
    token = mint(rsa_key("rsa-1"), claims(idp.issuer))
    idp.status = 503
    await refused(auth, token, status=503)
    hits = sum(idp.hits.values())
    for _ in range(5):  # within the retry pause: refused without touching the provider
        await refused(auth, token, status=503)
    assert sum(idp.hits.values()) == hits
    idp.status = 200
    clock.advance(FAILURE_RETRY_SECONDS + 0.1)
    assert (await auth.authenticate(bearer(token))).principal == "user:alice"


async def test_expired_keys_serve_during_outage_for_one_more_period(
    idp: LocalIdP, make_auth: AuthFactory
) -> None:
    clock = FakeClock()
    auth = make_auth(clock=clock, jwks_cache_seconds=100)
    token = mint(rsa_key("rsa-1"), claims(idp.issuer))
    await auth.authenticate(bearer(token))
    idp.status = 500
    clock.advance(150)  # expired, provider down: the old keys still serve
    assert (await auth.authenticate(bearer(token))).principal == "user:alice"
    clock.advance(60)  # beyond one extra period: no trustworthy keys left
    await refused(auth, token, status=503)


# --- leeway -------------------------------------------------------------------------------


async def test_leeway_honoured(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth(leeway_seconds=30)
    now = int(time.time())
    pair = rsa_key("rsa-1")
    late = claims(idp.issuer, iat=now - 400, nbf=now - 400, exp=now - 10)
    early = claims(idp.issuer, iat=now, nbf=now + 10)
    await auth.authenticate(bearer(mint(pair, late)))
    await auth.authenticate(bearer(mint(pair, early)))
    await refused(auth, mint(pair, claims(idp.issuer, iat=now - 400, nbf=now - 400, exp=now - 60)))
    await refused(auth, mint(pair, claims(idp.issuer, nbf=now + 60)))
    strict = make_auth(leeway_seconds=0)
    await refused(strict, mint(pair, late))


# --- claims → identity ---------------------------------------------------------------------


async def test_principal_mapping(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth()
    pair = rsa_key("rsa-1")

    async def principal(sub: Any) -> str:
        return (await auth.authenticate(bearer(mint(pair, claims(idp.issuer, sub=sub))))).principal

    assert await principal("alice") == "user:alice"
    assert await principal("alice@example.com") == "user:alice@example.com"
    assert await principal("user:alice") == "user:alice"
    assert await principal("agent:support-bot") == "agent:support-bot"
    assert await principal("local") == "user:local"  # never the library's local principal
    for bad in ("auth0|abc", "has space", "x" * 200):
        error = await refused(auth, mint(pair, claims(idp.issuer, sub=bad)))
        assert "'sub'" in error.message and bad not in error.message
    await refused(auth, mint(pair, claims(idp.issuer, sub=None)))


async def test_nested_principal_claim(idp: LocalIdP, make_auth: AuthFactory) -> None:
    """RFC 8693 style: the agent is act.sub, acting for the user in sub."""
    auth = make_auth(principal_claim="act.sub", on_behalf_of_claim="sub")
    token = mint(rsa_key("rsa-1"), claims(idp.issuer, sub="alice", act={"sub": "agent:bot"}))
    caller = await auth.authenticate(bearer(token))
    assert caller.principal == "agent:bot"
    assert caller.context.on_behalf_of is not None
    assert caller.context.on_behalf_of.principal == "user:alice"
    error = await refused(auth, mint(rsa_key("rsa-1"), claims(idp.issuer)))  # no act
    assert "act.sub" in error.message


async def test_on_behalf_of_absent_means_no_delegation(
    idp: LocalIdP, make_auth: AuthFactory
) -> None:
    auth = make_auth()
    caller = await auth.authenticate(bearer(mint(rsa_key("rsa-1"), claims(idp.issuer))))
    assert caller.context.on_behalf_of is None
    never = make_auth(on_behalf_of_claim=None)
    token = mint(rsa_key("rsa-1"), claims(idp.issuer, sub="agent:bot", obo="alice"))
    assert (await never.authenticate(bearer(token))).context.on_behalf_of is None


async def test_tenant_claim(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth(tenant_claim="https://astrocyte.dev/tenant")
    pair = rsa_key("rsa-1")
    token = mint(pair, claims(idp.issuer, **{"https://astrocyte.dev/tenant": "acme"}))
    assert (await auth.authenticate(bearer(token))).context.tenant == "acme"
    assert "tenant" in (await refused(auth, mint(pair, claims(idp.issuer)))).message
    bad = mint(pair, claims(idp.issuer, **{"https://astrocyte.dev/tenant": "a/b"}))
    await refused(auth, bad)


async def test_admin_principals(idp: LocalIdP, make_auth: AuthFactory) -> None:
    auth = make_auth(config_sections={"gateway": {"admin_principals": ["user:root", "agent:ops"]}})
    pair = rsa_key("rsa-1")

    async def admin(**overrides: Any) -> bool:
        token = mint(pair, claims(idp.issuer, **overrides))
        return (await auth.authenticate(bearer(token))).is_admin

    assert await admin(sub="root") is True
    assert await admin(sub="alice") is False
    assert await admin(sub="agent:ops", obo="root") is True
    assert await admin(sub="agent:ops", obo="alice") is False  # delegation never adds


async def test_obo_claim_gives_the_intersection_of_permissions(
    idp: LocalIdP, make_auth: AuthFactory
) -> None:
    sections = {
        "access_grants": [
            {"principals": ["agent:bot"], "banks": ["user-*"], "permissions": ["read", "write"]},
            {"principals": ["user:*"], "banks": ["user-{id}"], "permissions": ["admin"]},
        ]
    }
    auth = make_auth(config_sections=sections)
    config = make_config(oidc_auth(idp), **sections)
    token = mint(rsa_key("rsa-1"), claims(idp.issuer, sub="agent:bot", obo="alice"))
    caller = await auth.authenticate(bearer(token))
    assert caller.principal == "agent:bot"
    assert caller.context.on_behalf_of is not None
    assert caller.context.on_behalf_of.principal == "user:alice"
    async with Astrocyte.from_config(config) as brain:
        ctx = brain.bind(caller.context)
        # bot: read+write on user-*; alice: everything on user-alice only.
        assert ctx.effective_permissions("user-alice") == {Permission.READ, Permission.WRITE}
        assert ctx.effective_permissions("user-bob") == frozenset()
        await brain.retain("alice likes tea", "user-alice", context=caller.context)
        with pytest.raises(AccessDenied):
            await brain.retain("bob likes coffee", "user-bob", context=caller.context)
        alone = await auth.authenticate(
            bearer(mint(rsa_key("rsa-1"), claims(idp.issuer, sub="agent:bot")))
        )
        # Without delegation the bot's own grant covers user-bob.
        assert brain.bind(alone.context).effective_permissions("user-bob") == {
            Permission.READ,
            Permission.WRITE,
        }


# --- jwt_hs256 ------------------------------------------------------------------------------


@pytest.fixture
async def hs_auth() -> AsyncIterator[JwtAuthenticator]:
    config = make_config(
        {
            "mode": "jwt_hs256",
            "secret": HS_SECRET,
            "issuer": "astrocyte-tests",
            "audience": AUDIENCE,
        }
    )
    auth = build_authenticator(config)
    assert isinstance(auth, JwtAuthenticator)
    yield auth
    await auth.close()


async def test_hs256_mode(hs_auth: JwtAuthenticator) -> None:
    good = hmac_token(claims("astrocyte-tests", sub="agent:etl"), HS_SECRET.encode())
    caller = await hs_auth.authenticate(bearer(good))
    assert caller.principal == "agent:etl"
    assert caller.method == "jwt_hs256"
    await refused(hs_auth, hmac_token(claims("astrocyte-tests"), b"x" * 40))  # wrong secret
    await refused(hs_auth, hmac_token(claims("elsewhere"), HS_SECRET.encode()))
    await refused(hs_auth, unsigned_token(claims("astrocyte-tests")))
    # An asymmetric token is refused in HS256 mode (the allow-list is HS256 only).
    await refused(hs_auth, mint(rsa_key("rsa-1"), claims("astrocyte-tests")))


async def test_hs256_without_issuer_or_audience_checks_only_what_is_configured() -> None:
    auth = JwtAuthenticator(make_config({"mode": "jwt_hs256", "secret": HS_SECRET}))
    token = hmac_token(
        {"sub": "alice", "aud": "x", "exp": int(time.time()) + 60}, HS_SECRET.encode()
    )
    assert (await auth.authenticate(bearer(token))).principal == "user:alice"
    await auth.close()
