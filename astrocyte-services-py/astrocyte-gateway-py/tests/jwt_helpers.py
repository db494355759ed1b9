"""Test helpers for JWT auth: keys, token minting and a local identity provider.

The identity provider is a real uvicorn server on 127.0.0.1 (free port, own thread)
serving ``/.well-known/openid-configuration`` and ``/jwks``; tests switch its key set
(rotation), make it slow or failing, and count how often each document was fetched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import anyio
import jwt
import uvicorn
from astrocyte.config import AstrocyteConfig, load_config
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

AUDIENCE = "astrocyte-api"
HS_SECRET = "s3cret-s3cret-s3cret-s3cret-s3cret-!!"


@dataclass(frozen=True)
class SigningKeyPair:
    """A private key for minting and its public JWK (with ``kid`` and ``alg``)."""

    kid: str
    alg: str
    private: Any
    jwk: dict[str, Any]

    def public_pem(self) -> bytes:
        """The public key in PEM (what a key-confusion attacker would HMAC with)."""
        pem: bytes = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem


@cache
def rsa_key(kid: str, alg: str = "RS256") -> SigningKeyPair:
    """An RSA-2048 key pair named ``kid`` (cached: key generation is slow)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKeyPair(kid, alg, private, {**jwk, "kid": kid, "alg": alg, "use": "sig"})


@cache
def ec_key(kid: str) -> SigningKeyPair:
    """A P-256 key pair named ``kid`` (for ES256)."""
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    return SigningKeyPair(kid, "ES256", private, {**jwk, "kid": kid, "use": "sig"})


def claims(issuer: str, **overrides: Any) -> dict[str, Any]:
    """Valid claims for ``issuer`` (sub alice, aud AUDIENCE, 5 minutes to live);
    an override of ``None`` removes the claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def mint(key: SigningKeyPair, payload: dict[str, Any], **header: Any) -> str:
    """``payload`` signed with ``key`` (``kid`` header set unless overridden; a header
    of ``None`` is left out)."""
    headers = {k: v for k, v in {"kid": key.kid, **header}.items() if v is not None}
    return jwt.encode(payload, key.private, algorithm=key.alg, headers=headers)


def b64(data: bytes) -> str:
    """Unpadded base64url, as JWS uses."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    """A JSON value as a JWS segment."""
    return b64(json.dumps(value, separators=(",", ":")).encode())


def unsigned_token(payload: dict[str, Any], alg: str = "none") -> str:
    """An ``alg: none`` token (empty signature)."""
    return f"{b64json({'alg': alg, 'typ': 'JWT'})}.{b64json(payload)}."


def hmac_token(payload: dict[str, Any], secret: bytes, **header: Any) -> str:
    """An HS256 token built by hand, so any bytes (even a public key PEM) can be the
    secret; PyJWT rightly refuses to do this."""
    signing_input = f"{b64json({'alg': 'HS256', 'typ': 'JWT', **header})}.{b64json(payload)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def bearer(token: str) -> dict[str, str]:
    """Request headers (lower-cased, as the gateway passes them) carrying ``token``."""
    return {"authorization": f"Bearer {token}"}


class FakeClock:
    """A monotonic clock tests can move forward."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ThreadedUvicorn:
    """A real uvicorn server on 127.0.0.1 running in a daemon thread."""

    def __init__(self, app: Any) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start and wait until the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Ask the server to exit and wait for it."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()


@dataclass
class LocalIdP:
    """State of the local identity provider; tests mutate it between requests."""

    keys: list[dict[str, Any]] = field(default_factory=list)
    hits: Counter[str] = field(default_factory=Counter)
    delay: float = 0.0
    status: int = 200
    discovery_issuer: str | None = None  # None: the real issuer
    server: ThreadedUvicorn | None = None

    @property
    def issuer(self) -> str:
        """The issuer URL (the server's base URL)."""
        assert self.server is not None
        return self.server.base_url

    @property
    def jwks_url(self) -> str:
        """The JWKS URL."""
        return f"{self.issuer}/jwks"

    def publish(self, *pairs: SigningKeyPair, extra: list[Any] | None = None) -> None:
        """Serve exactly these public keys (plus raw ``extra`` JWK entries)."""
        self.keys = [pair.jwk for pair in pairs] + list(extra or [])

    def reset(self) -> None:
        """Back to a healthy provider with the default RSA and EC keys, no hits."""
        self.publish(rsa_key("rsa-1"), ec_key("ec-1"))
        self.hits.clear()
        self.delay = 0.0
        self.status = 200
        self.discovery_issuer = None

    def app(self) -> Starlette:
        """The Starlette app serving discovery and the JWKS from this state."""

        async def discovery(request: Request) -> Response:
            self.hits["discovery"] += 1
            if self.status != 200:
                return Response("down", status_code=self.status)
            issuer = self.discovery_issuer or self.issuer
            return JSONResponse({"issuer": issuer, "jwks_uri": self.jwks_url})

        async def jwks(request: Request) -> Response:
            self.hits["jwks"] += 1
            if self.delay:
                await anyio.sleep(self.delay)
            if self.status != 200:
                return Response("down", status_code=self.status)
            return JSONResponse({"keys": self.keys})

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks", jwks),
            ]
        )


def start_idp() -> LocalIdP:
    """A running local identity provider (stop with ``idp.server.stop()``)."""
    idp = LocalIdP()
    idp.server = ThreadedUvicorn(idp.app())
    idp.server.start()
    idp.reset()
    return idp


def make_config(auth: dict[str, Any], **sections: Any) -> AstrocyteConfig:
    """A fast test config (memory storage, hashing embedder) with ``gateway.auth``."""
    gateway = {"auth": auth, **sections.pop("gateway", {})}
    return load_config(
        {
            "storage": {"backend": "memory"},
            "embedder": {"provider": "hashing"},
            "gateway": gateway,
            **sections,
        }
    )


def oidc_auth(idp: LocalIdP, **overrides: Any) -> dict[str, Any]:
    """A ``jwt_oidc`` auth section for ``idp`` (RS256 and ES256, audience AUDIENCE)."""
    return {
        "mode": "jwt_oidc",
        "issuer": idp.issuer,
        "audience": AUDIENCE,
        "algorithms": ["RS256", "ES256"],
        **overrides,
    }
