"""Signing keys of an OpenID Connect identity provider, fetched and cached.

:class:`JwksCache` answers "which public keys may have signed a token with this
``kid`` and ``alg``", fetching the provider's JWKS with httpx. The rules:

* The JWKS URL is ``jwks_url`` when configured, else the ``jwks_uri`` of
  ``<issuer>/.well-known/openid-configuration`` (whose ``issuer`` must equal the
  configured one, as OpenID Connect Discovery requires). The discovered URL is kept
  until a JWKS fetch fails, then discovered again.
* Fetched keys are trusted for ``jwks_cache_seconds``; then the next token refetches.
* A token whose ``kid`` is not in a fresh key set (the provider rotated its keys)
  refetches at once, but at most once per :data:`UNKNOWN_KID_REFETCH_SECONDS`, so a
  stream of tokens with made-up ``kid`` values cannot make the gateway hammer the IdP.
* Concurrent requests share one in-flight fetch.
* When a fetch fails (IdP down, timeout, non-200, not a JWKS) the gateway cannot tell
  good tokens from bad: :class:`KeysUnavailable` is raised, which the authenticator
  turns into status 503, code ``auth_unavailable`` — not 401, because the caller's
  token is not at fault and clients must not discard it. Expired keys keep serving
  during an outage for one more ``jwks_cache_seconds`` (0: never), and failed fetches
  are retried at most every :data:`FAILURE_RETRY_SECONDS`.
* Only RSA and EC keys meant for signatures are used (``use`` absent or ``sig``,
  ``key_ops`` absent or containing ``verify``); symmetric (``oct``) keys in a JWKS are
  ignored, so an HMAC key can never be confused with a public key. RSA keys shorter
  than 2048 bits are ignored. Keys named by the token itself (``jku``, ``x5u``,
  ``jwk`` headers) are never fetched or used.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

__all__ = [
    "FAILURE_RETRY_SECONDS",
    "JWKS_TIMEOUT_SECONDS",
    "MAX_DOCUMENT_BYTES",
    "UNKNOWN_KID_REFETCH_SECONDS",
    "JwksCache",
    "KeysUnavailable",
    "SigningKey",
]

logger = logging.getLogger(__name__)

#: An unknown ``kid`` refetches the JWKS at most this often.
UNKNOWN_KID_REFETCH_SECONDS = 60.0
#: After a failed fetch, no new fetch is attempted for this long (requests fail fast).
FAILURE_RETRY_SECONDS = 5.0
#: Total time allowed for one discovery or JWKS request.
JWKS_TIMEOUT_SECONDS = 5.0
#: Largest discovery document or JWKS accepted (real ones are a few KB).
MAX_DOCUMENT_BYTES = 512 * 1024
#: Smallest RSA modulus accepted.
MIN_RSA_BITS = 2048

_EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


class KeysUnavailable(Exception):
    """The provider's signing keys could not be fetched (the reason is for logs only)."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One usable public key from the JWKS."""

    kid: str | None
    kty: str
    crv: str | None
    alg: str | None  # as declared by the JWK; None: any algorithm of its key type
    key: Any  # a cryptography public key object

    def fits(self, alg: str) -> bool:
        """Whether this key can verify a signature made with ``alg``."""
        if self.alg is not None and self.alg != alg:
            return False
        if alg[:2] in ("RS", "PS"):
            return self.kty == "RSA"
        if alg in _EC_CURVES:
            return self.kty == "EC" and self.crv == _EC_CURVES[alg]
        return False


def parse_jwks(document: Any) -> list[SigningKey]:
    """The usable signing keys of a JWKS document; raises :class:`KeysUnavailable`
    when it is not a JWKS at all (unusable individual keys are skipped and logged)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeysUnavailable("the JWKS document has no 'keys' list")
    keys: list[SigningKey] = []
    for index, entry in enumerate(document["keys"]):
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        kty = entry.get("kty")
        if kid is not None and not isinstance(kid, str):
            continue
        if kty not in ("RSA", "EC"):
            continue  # oct (HMAC) keys must never verify anything here; OKP is not allowed
        if entry.get("use", "sig") != "sig":
            continue
        ops = entry.get("key_ops")
        if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
            continue
        declared = entry.get("alg")
        if declared is not None and not isinstance(declared, str):
            continue
        try:
            # The algorithm only picks the key parser; which token algorithms the key
            # may verify is decided by SigningKey.fits.
            parsed = jwt.PyJWK(entry, "RS256" if kty == "RSA" else _curve_alg(entry))
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
            logger.warning("JWKS key #%d (kid %r) is not a valid %s key; ignored", index, kid, kty)
            continue
        if isinstance(parsed.key, RSAPublicKey) and parsed.key.key_size < MIN_RSA_BITS:
            logger.warning("JWKS key %r is a %d-bit RSA key; ignored", kid, parsed.key.key_size)
            continue
        crv = entry.get("crv") if kty == "EC" else None
        keys.append(SigningKey(kid, kty, crv, declared, parsed.key))
    return keys


def _curve_alg(entry: dict[str, Any]) -> str:
    for alg, curve in _EC_CURVES.items():
        if entry.get("crv") == curve:
            return alg
    raise ValueError("unsupported curve")


class JwksCache:
    """The provider's signing keys, cached (see the module docstring for the rules).

    ``clock`` (monotonic seconds) and ``client`` are for tests and embedding; a client
    passed in is not closed by :meth:`close`.
    """

    def __init__(
        self,
        *,
        jwks_url: str | None,
        issuer: str | None,
        cache_seconds: float,
        timeout: float = JWKS_TIMEOUT_SECONDS,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if jwks_url is None and issuer is None:
            raise ValueError("jwt_oidc needs gateway.auth.jwks_url or gateway.auth.issuer")
        self._configured_url = jwks_url
        self._issuer = issuer
        self._cache_seconds = cache_seconds
        self._timeout = timeout
        self._client = client
        self._owns_client = client is None
        self._clock = clock
        self._jwks_url: str | None = jwks_url
        self._keys: list[SigningKey] | None = None
        self._fetched_at = 0.0
        self._failed_at: float | None = None
        self._last_kid_refetch: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        #: Completed fetches of the JWKS document (successful or not); for metrics/tests.
        self.fetches = 0

    async def keys_for(self, kid: str | None, alg: str) -> list[SigningKey]:
        """Keys that may have signed a token with this ``kid`` and ``alg``.

        Empty when the key is unknown even after the refetch the rules allow;
        :class:`KeysUnavailable` when no key set can be had at all.
        """
        now = self._clock()
        fetched_now = False
        if self._keys is None or now - self._fetched_at >= self._cache_seconds:
            fetched_now = await self._refresh_expired(now)
        found = self._matching(kid, alg)
        if found or fetched_now:
            return found
        if self._inflight is not None:
            # Someone is already fetching (a rotation seen by a concurrent request):
            # wait for that result instead of refusing the token.
            await self._shared_fetch()
            return self._matching(kid, alg)
        if self._last_kid_refetch is None or (
            now - self._last_kid_refetch >= UNKNOWN_KID_REFETCH_SECONDS
        ):
            self._last_kid_refetch = now
            logger.info("token kid %r is not in the cached JWKS; refetching", kid)
            try:
                await self._shared_fetch()
            except KeysUnavailable:
                return []  # the cached set is still good; this kid is simply unknown
            return self._matching(kid, alg)
        return []

    async def _refresh_expired(self, now: float) -> bool:
        """Refetch an expired (or never fetched) key set; True when a fetch succeeded.

        During an outage, expired keys keep serving for one more cache period.
        """
        stale_ok = self._keys is not None and now - self._fetched_at < 2 * self._cache_seconds
        if self._failed_at is not None and now - self._failed_at < FAILURE_RETRY_SECONDS:
            if stale_ok:
                return False
            raise KeysUnavailable("the last JWKS fetch failed moments ago")
        try:
            await self._shared_fetch()
        except KeysUnavailable:
            if stale_ok:
                logger.warning("JWKS refetch failed; serving the expired key set for now")
                return False
            raise
        return True

    def _matching(self, kid: str | None, alg: str) -> list[SigningKey]:
        return [
            key
            for key in self._keys or ()
            # A token without a kid may be verified by any key of the right type;
            # a token with one only by that key.
            if (kid is None or key.kid == kid) and key.fits(alg)
        ]

    async def _shared_fetch(self) -> None:
        if self._inflight is None:
            task = asyncio.create_task(self._fetch())
            task.add_done_callback(self._fetch_done)
            self._inflight = task
        # Shielded: a client that disconnects cancels its own wait, not the fetch the
        # other waiting requests depend on.
        await asyncio.shield(self._inflight)

    def _fetch_done(self, task: asyncio.Task[None]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved here so an unawaited failure is not logged twice

    async def _fetch(self) -> None:
        try:
            url = self._jwks_url or await self._discover()
            try:
                keys = parse_jwks(await self._get_json(url))
            finally:
                self.fetches += 1
        except KeysUnavailable as error:
            self._failed_at = self._clock()
            if self._configured_url is None:
                self._jwks_url = None  # the provider may have moved its JWKS: rediscover
            logger.warning("cannot fetch the identity provider's signing keys: %s", error)
            raise
        self._keys = keys
        self._fetched_at = self._clock()
        self._failed_at = None
        self._jwks_url = url
        logger.info("fetched %d signing key(s) from the JWKS", len(keys))

    async def _discover(self) -> str:
        assert self._issuer is not None  # the constructor requires url or issuer
        document = await self._get_json(
            self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        )
        if not isinstance(document, dict):
            raise KeysUnavailable("the discovery document is not a JSON object")
        if document.get("issuer") != self._issuer:
            raise KeysUnavailable("the discovery document names a different issuer")
        uri = document.get("jwks_uri")
        if not isinstance(uri, str) or not _trusted_url(uri):
            raise KeysUnavailable(
                "the discovery document has no usable jwks_uri (https, or http on loopback)"
            )
        return uri

    async def _get_json(self, url: str) -> Any:
        client = self._http()
        try:
            async with client.stream("GET", url, headers={"Accept": "application/json"}) as resp:
                if resp.status_code != 200:
                    raise KeysUnavailable(f"GET {url} answered {resp.status_code}")
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise KeysUnavailable(f"GET {url} returned more than {MAX_DOCUMENT_BYTES}B")
        except httpx.HTTPError as error:
            raise KeysUnavailable(f"GET {url} failed: {type(error).__name__}") from error
        try:
            return json.loads(body)
        except ValueError as error:
            raise KeysUnavailable(f"GET {url} did not return JSON") from error

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # Redirects are not followed: the keys must come from the configured place.
            self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        return self._client

    async def close(self) -> None:
        """Cancel a fetch in flight and close the HTTP client this cache created."""
        if self._inflight is not None:
            self._inflight.cancel()
            await asyncio.gather(self._inflight, return_exceptions=True)
            self._inflight = None
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None


def _trusted_url(url: str) -> bool:
    if url.startswith("https://"):
        return True
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return parsed.scheme == "http" and parsed.host in ("localhost", "127.0.0.1", "::1")
