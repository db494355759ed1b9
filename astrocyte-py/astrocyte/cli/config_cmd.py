"""``astrocyte config``: validate, show and export the configuration.

* ``validate [FILE]`` - exit 0 and ``ok`` with a summary, or exit 2 listing every
  problem (``error: ...`` lines on stderr, like every other command).
* ``show [FILE]`` - the effective config (defaults, profiles, file, ``--db``) as YAML,
  or JSON with the global ``--json``; secrets are always masked.
* ``schema`` - the JSON Schema of ``astrocyte.yaml`` (``--output``, ``--check``).
* ``profiles [NAME]`` - the built-in named and compliance profiles.

FILE defaults to the global ``--config`` (``$ASTROCYTE_CONFIG``); with neither, these
commands look at the zero config, exactly as every other command would run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from astrocyte.config import AstrocyteConfig, load_config, mask_secrets
from astrocyte.config.export import render_schema, schema_is_current
from astrocyte.config.problems import ConfigProblems
from astrocyte.config.profiles import COMPLIANCE_PROFILES, NAMED_PROFILES, Profile
from astrocyte.errors import ConfigError


def _root_params(ctx: click.Context) -> dict[str, Any]:
    # The group's options (--config, --db, --json) are read from the root context
    # instead of importing its state class, which would make cli.main and this module
    # import each other.
    return dict(ctx.find_root().params)


def _as_json(ctx: click.Context) -> bool:
    return bool(_root_params(ctx).get("as_json"))


def _load(ctx: click.Context, file: str | None) -> tuple[AstrocyteConfig, str | None]:
    params = _root_params(ctx)
    source = file or params.get("config")
    config = load_config(source)
    db = params.get("db")
    if db:
        # The same override every other command applies, so `show` shows what runs.
        config = config.model_copy(
            update={"storage": config.storage.model_copy(update={"path": db})}
        )
    return config, source


def _echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, ensure_ascii=False, default=str))


def _echo_yaml(payload: Any) -> None:
    click.echo(yaml.safe_dump(payload, sort_keys=False, allow_unicode=True).rstrip("\n"))


@click.group("config")
def config() -> None:
    """Validate, show and export astrocyte.yaml."""


@config.command()
@click.argument("file", required=False, type=click.Path(dir_okay=True))
@click.pass_context
def validate(ctx: click.Context, file: str | None) -> None:
    """Check FILE (default: --config) and summarise it; exit 2 on any problem."""
    try:
        loaded, source = _load(ctx, file)
    except ConfigProblems as exc:
        # Every problem, not just the first: fixing them one run at a time is tedious.
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        if len(exc.problems) > 1:
            click.echo(f"{len(exc.problems)} problems", err=True)
        sys.exit(2)
    summary = summarise(loaded)
    if _as_json(ctx):
        _echo_json({"ok": True, "file": source, "summary": summary})
        return
    click.echo(f"ok: {source or 'zero config (no file)'}")
    for key, value in summary.items():
        click.echo(f"  {key}: {value}")


def summarise(config: AstrocyteConfig) -> dict[str, Any]:
    """The few facts that tell configs apart, for ``validate``'s output."""
    storage = config.storage
    store = storage.backend + (f" ({storage.path})" if storage.backend == "embedded" else "")
    overrides = [
        kind
        for kind in ("document_store", "vector_store", "graph_store")
        if getattr(storage, kind) is not None
    ]
    if overrides:
        store += " + adapters: " + ", ".join(
            f"{kind}={getattr(storage, kind).provider}" for kind in overrides
        )
    deployment: str = config.deployment.mode
    if deployment != "library":
        deployment += f" (auth: {config.gateway.auth.mode})"
    return {
        "profile": config.profile,
        "compliance": config.compliance,
        "storage": store,
        "embedder": config.embedder.provider,
        "llm": config.llm.provider if config.llm else None,
        "deployment": deployment,
        "declared_banks": len(config.banks.declared),
        "agents": len(config.agents),
        "access_grants": len(config.access_grants),
        "sources": len(config.sources),
        "extraction_profiles": len(config.extraction_profiles),
        "authority_tiers": len(config.recall_authority.tiers),
    }


@config.command()
@click.argument("file", required=False, type=click.Path(dir_okay=True))
@click.option(
    "--changed", is_flag=True, help="Only settings that differ from the built-in defaults."
)
@click.pass_context
def show(ctx: click.Context, file: str | None, changed: bool) -> None:
    """Print the effective config of FILE (default: --config), secrets masked."""
    loaded, _ = _load(ctx, file)
    dumped = loaded.model_dump(mode="json", exclude_defaults=changed)
    masked = mask_secrets(dumped)
    if _as_json(ctx):
        _echo_json(masked)
    else:
        _echo_yaml(masked)


@config.command()
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="Write the schema to this file instead of printing it.",
)
@click.option(
    "--check",
    "check",
    type=click.Path(dir_okay=False),
    help="Exit 1 if this file does not match the current schema (for CI).",
)
def schema(output: str | None, check: str | None) -> None:
    """Print (or write, or check) the JSON Schema of astrocyte.yaml."""
    if check:
        if not schema_is_current(Path(check)):
            click.echo(
                f"error: {check} is out of date; run: astrocyte config schema -o {check}",
                err=True,
            )
            sys.exit(1)
        click.echo(f"{check} is up to date")
        return
    text = render_schema()
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


def _describe(profile: Profile, kind: str) -> dict[str, Any]:
    return {
        "name": profile.name,
        "kind": kind,
        "description": profile.description,
        "values": profile.values,
        "locks": [
            {"path": lock.path, "rule": lock.requirement(), "reason": lock.reason}
            for lock in profile.locks
        ],
    }


@config.command()
@click.argument("name", required=False)
@click.pass_context
def profiles(ctx: click.Context, name: str | None) -> None:
    """List the built-in profiles, or show what profile NAME sets and locks."""
    described = [_describe(p, "profile") for p in NAMED_PROFILES.values()] + [
        _describe(p, "compliance") for p in COMPLIANCE_PROFILES.values()
    ]
    if name is not None:
        chosen = [d for d in described if d["name"] == name]
        if not chosen:
            names = [d["name"] for d in described]
            raise ConfigError(
                "profile", f"unknown profile {name!r}", fix=f"use one of {', '.join(names)}"
            )
        if _as_json(ctx):
            _echo_json(chosen[0])
            return
        entry = chosen[0]
        click.echo(f"# {entry['kind']} {entry['name']}: {entry['description']}")
        if entry["values"]:
            _echo_yaml(entry["values"])
        for lock in entry["locks"]:
            click.echo(f"# locked: {lock['path']} {lock['rule']} ({lock['reason']})")
        return
    if _as_json(ctx):
        _echo_json(described)
        return
    for entry in described:
        key = "profile" if entry["kind"] == "profile" else "compliance"
        click.echo(f"{key}: {entry['name']:<10} {entry['description']}")
