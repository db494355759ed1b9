"""``astrocyte-gateway``: serve the gateway with uvicorn.

``astrocyte-gateway --config astrocyte.yaml [--host H] [--port P] [--workers N]``;
host and port default to ``gateway.host`` / ``gateway.port``. Without ``--config``
the opt-in lookup of the library is used (``$ASTROCYTE_CONFIG``, then
``./astrocyte.yaml``).

The config's own cross-checks already refuse an unauthenticated gateway in
``standalone``/``plugin`` mode. The CLI adds one rule: a config still in
``deployment.mode: library`` is refused unless ``gateway.auth.mode: none`` says that
serving without authentication is intended (then a loud warning is logged).

Access logs are JSON lines on stderr (logger ``astrocyte_gateway.access``); uvicorn's
own access log is off. SIGTERM/SIGINT stop accepting connections, let in-flight
requests finish (up to ``gateway.request_timeout_seconds`` + 5 s), then stop the
ingestion sources and close the stores.
"""

from __future__ import annotations

import argparse
import logging
import logging.config
import os
import sys
from collections.abc import Sequence
from typing import Any

from astrocyte.config import AstrocyteConfig, find_config_file, load_config
from astrocyte.errors import ConfigError
from fastapi import FastAPI

__all__ = ["CONFIG_ENV", "app_from_env", "check_servable", "log_config", "main"]

#: How worker processes (``--workers`` > 1) learn the config path.
CONFIG_ENV = "ASTROCYTE_GATEWAY_CONFIG"

logger = logging.getLogger("astrocyte_gateway")


def log_config(level: str) -> dict[str, Any]:
    """The CLI's logging setup (a :func:`logging.config.dictConfig` dict): plain lines
    on stderr at ``level``, and the access log as pure JSON lines on stderr at INFO."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
            "json": {"format": "%(message)s"},
        },
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "plain"},
            "access": {"class": "logging.StreamHandler", "formatter": "json"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "astrocyte_gateway": {
                "handlers": ["stderr"],
                "level": level.upper(),
                "propagate": False,
            },
            "astrocyte_gateway.access": {
                "handlers": ["access"],
                "level": "INFO",
                "propagate": False,
            },
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


def check_servable(config: AstrocyteConfig) -> None:
    """Refuse to serve a library-mode config unless auth ``none`` is intended."""
    if config.deployment.mode == "library" and config.gateway.auth.mode != "none":
        raise ConfigError(
            "deployment.mode",
            "is 'library' (the default): the gateway is a network service",
            fix="set deployment.mode: standalone with gateway.auth configured, or "
            "gateway.auth.mode: none to serve without authentication on purpose "
            "(trusted loopback only)",
        )


def app_from_env() -> FastAPI:
    """App factory for uvicorn worker processes: the config path is in
    ``$ASTROCYTE_GATEWAY_CONFIG``."""
    from astrocyte_gateway.app import create_app

    config = load_config(os.environ[CONFIG_ENV])
    check_servable(config)
    return create_app(config)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="astrocyte-gateway", description="Serve the Astrocyte HTTP gateway."
    )
    parser.add_argument("--config", help="astrocyte.yaml (default: $ASTROCYTE_CONFIG)")
    parser.add_argument("--host", help="interface to bind (default: gateway.host)")
    parser.add_argument("--port", type=int, help="port (default: gateway.port)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--log-level", default="info", help="debug | info | warning")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until it is stopped; returns the exit status."""
    import uvicorn

    args = _parser().parse_args(argv)
    logging.config.dictConfig(log_config(args.log_level))
    path = args.config or find_config_file()
    if path is None:
        print("astrocyte-gateway: no config; pass --config astrocyte.yaml", file=sys.stderr)
        return 2
    try:
        config = load_config(path)
        check_servable(config)
    except ConfigError as exc:
        print(f"astrocyte-gateway: {exc}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("astrocyte-gateway: --workers must be >= 1", file=sys.stderr)
        return 2
    host = args.host or config.gateway.host
    port = args.port if args.port is not None else config.gateway.port
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": log_config(args.log_level),
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": int(config.gateway.request_timeout_seconds) + 5,
        "proxy_headers": False,
        # uvicorn's "auto" http and loop already pick httptools and uvloop, which
        # uvicorn[standard] installs (uvloop not on Windows, where asyncio's loop is
        # the fallback): naming them here would only break that fallback.
    }
    if args.workers > 1:
        # Workers are separate processes: each builds its own app from the path.
        os.environ[CONFIG_ENV] = str(path)
        uvicorn.run(
            "astrocyte_gateway.cli:app_from_env", factory=True, workers=args.workers, **options
        )
        return 0
    from astrocyte_gateway.app import create_app

    try:
        app = create_app(config)
    except ConfigError as exc:
        print(f"astrocyte-gateway: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, **options)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
