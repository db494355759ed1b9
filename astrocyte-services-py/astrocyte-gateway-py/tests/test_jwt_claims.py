"""Property tests: claim paths, claim → principal mapping, and malformed tokens.

Malformed tokens go through ``jwt_hs256`` (no network) and ``jwt_oidc`` pointed at a
JWKS URL nobody listens on: garbage must be refused with 401 before any key fetch is
attempted, and nothing but :class:`AuthError` may ever escape ``authenticate``.
"""

from __future__ import annotations

import asyncio
import json
import string
import time
from typing import Any

import pytest
from astrocyte.config import AstrocyteConfig
from astrocyte.identity.patterns import ACTOR_ID, PRINCIPAL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt_helpers import HS_SECRET, b64, b64json, bearer, free_port, hmac_token, make_config

from astrocyte_gateway.auth import AuthError
from astrocyte_gateway.auth.claims import (
    MISSING,
    claim_at,
    identity_from_claim,
    tenant_from_claim,
)
from astrocyte_gateway.auth.jwt import JwtAuthenticator

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

names = st.text(alphabet=string.ascii_letters + string.digits + "_-:/", min_size=1, max_size=12)
json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


# --- claim paths ----------------------------------------------------------------------------


@SETTINGS
@given(path=st.lists(names, min_size=1, max_size=5), value=json_scalars)
def test_dotted_path_finds_nested_value(path: list[str], value: Any) -> None:
    claims: Any = value
    for key in reversed(path):
        claims = {key: claims}
    assert claim_at(claims, ".".join(path)) == value


@SETTINGS
@given(path=st.lists(names, min_size=1, max_size=5), value=json_scalars)
def test_dotted_name_found_by_full_name(path: list[str], value: Any) -> None:
    name = ".".join(path)
    assert claim_at({name: value, "other": 1}, name) == value


@SETTINGS
@given(claims=st.dictionaries(st.text(max_size=8), json_values), path=st.text(max_size=20))
def test_claim_at_never_raises(claims: dict[str, Any], path: str) -> None:
    found = claim_at(claims, path)
    assert found is MISSING or found is not None or None in _leaves(claims)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def test_claim_at_examples() -> None:
    claims = {"act": {"sub": "agent:bot"}, "https://x.example/tenant": "acme", "sub": "alice"}
    assert claim_at(claims, "act.sub") == "agent:bot"
    assert claim_at(claims, "https://x.example/tenant") == "acme"
    assert claim_at(claims, "act.missing") is MISSING
    assert claim_at(claims, "sub.deeper") is MISSING  # a string has no members
    assert claim_at(claims, "") is MISSING
    assert claim_at({"a": {"b.c": 1}}, "a.b.c") == 1
    assert claim_at({"a": None}, "a") is None  # present but null is not missing


# --- claim values → identities --------------------------------------------------------------


@SETTINGS
@given(value=json_values)
def test_identity_from_any_claim_is_valid_or_refused(value: Any) -> None:
    try:
        identity = identity_from_claim(value, "sub")
    except AuthError as error:
        assert error.status == 401
        # The message never echoes the claim: it is the same text a clearly different
        # bad value of the same kind gets (a bare "not in" would trip on values such
        # as "_" that the fixed text happens to contain).
        reference = "no spaces allowed!" if isinstance(value, str) and value else None
        with pytest.raises(AuthError) as other:
            identity_from_claim(reference, "sub")
        assert error.message == other.value.message
        return
    assert isinstance(value, str)
    assert PRINCIPAL.match(identity.principal)
    # A value is taken as is or prefixed with user:, never otherwise rewritten.
    assert identity.principal in (value, f"user:{value}")


@SETTINGS
@given(ident=st.from_regex(ACTOR_ID, fullmatch=True))
def test_bare_ids_become_users_unless_typed(ident: str) -> None:
    identity = identity_from_claim(ident, "sub")
    kind, sep, rest = ident.partition(":")
    if identity.principal == ident:  # read as type:id
        assert sep and identity.type == kind and identity.id == rest
    else:
        assert (identity.type, identity.id) == ("user", ident)


@SETTINGS
@given(value=json_values)
def test_tenant_claim_valid_or_refused(value: Any) -> None:
    try:
        tenant = tenant_from_claim(value, "tid")
    except AuthError as error:
        assert error.status == 401
        return
    assert tenant == value and "/" not in tenant and ":" not in tenant


# --- malformed tokens ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def hs_config() -> AstrocyteConfig:
    return make_config({"mode": "jwt_hs256", "secret": HS_SECRET})


@pytest.fixture(scope="module")
def oidc_config() -> AstrocyteConfig:
    dead = f"http://127.0.0.1:{free_port()}"
    return make_config(
        {"mode": "jwt_oidc", "issuer": dead, "audience": "a", "jwks_url": f"{dead}/jwks"}
    )


def _outcome(config: AstrocyteConfig, headers: dict[str, str]) -> AuthError:
    # A fresh authenticator per example: each asyncio.run is a new event loop, and the
    # JWKS HTTP client must not outlive the loop it was made in.
    async def attempt() -> AuthError:
        auth = JwtAuthenticator(config)
        try:
            await auth.authenticate(headers)
        except AuthError as error:
            return error
        finally:
            await auth.close()
        raise AssertionError("a malformed token was accepted")

    return asyncio.run(attempt())


segments = st.text(alphabet=string.ascii_letters + string.digits + "-_=+/.", max_size=60)


@SETTINGS
@given(token=st.text(max_size=200) | st.lists(segments, max_size=5).map(".".join))
def test_garbage_tokens_refused_with_401(
    hs_config: AstrocyteConfig, oidc_config: AstrocyteConfig, token: str
) -> None:
    for config in (hs_config, oidc_config):
        error = _outcome(config, {"authorization": f"Bearer {token}"})
        assert error.status == 401, error.message


@SETTINGS
@given(header=json_values, payload=json_values, signature=st.binary(max_size=64))
def test_structurally_valid_garbage_refused_with_401(
    hs_config: AstrocyteConfig,
    oidc_config: AstrocyteConfig,
    header: Any,
    payload: Any,
    signature: bytes,
) -> None:
    token = f"{b64json(header)}.{b64json(payload)}.{b64(signature)}"
    assert _outcome(hs_config, bearer(token)).status == 401
    error = _outcome(oidc_config, bearer(token))
    if isinstance(header, dict) and header.get("alg") == "RS256":
        # Plausible enough to need the (unreachable) keys: 503 is the right answer.
        assert (error.status, error.code) == (503, "auth_unavailable")
    else:
        assert error.status == 401, error.message


def test_plausible_header_with_keys_unreachable_is_503(oidc_config: AstrocyteConfig) -> None:
    token = f"{b64json({'alg': 'RS256', 'kid': 'k'})}.{b64json({})}.{b64(b'sig')}"
    assert _outcome(oidc_config, bearer(token)).status == 503


@SETTINGS
@given(payload=st.dictionaries(st.sampled_from(["sub", "exp", "iat", "nbf", "obo"]), json_values))
def test_correctly_signed_odd_claims_never_crash(
    hs_config: AstrocyteConfig, payload: dict[str, Any]
) -> None:
    """Signed with the right secret, so only claim handling can refuse it: any outcome
    but a clean 401 or an accepted caller with a valid principal is a bug."""
    payload.setdefault("exp", int(time.time()) + 60)
    token = hmac_token(json.loads(json.dumps(payload)), HS_SECRET.encode())

    async def attempt() -> None:
        auth = JwtAuthenticator(hs_config)
        try:
            caller = await auth.authenticate(bearer(token))
        except AuthError as error:
            assert error.status == 401
            return
        assert PRINCIPAL.match(caller.principal)

    asyncio.run(attempt())
