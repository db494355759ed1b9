"""The ``astrocyte`` command: retain, recall, reflect, forget, banks, stats, demo.

Human-readable output by default; ``--json`` prints one JSON document for machines.
Errors print ``error: <field>: <message> (fix: ...)`` to stderr and exit with status 2
for bad input and 1 for everything else.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Callable, Coroutine, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import click

from astrocyte.brain import Astrocyte
from astrocyte.cli import render
from astrocyte.cli.bench import bench
from astrocyte.cli.config_cmd import config as config_group
from astrocyte.config import load_config
from astrocyte.errors import AstrocyteError, ConfigError, ValidationError

T = TypeVar("T")
_BATCH = 256


class _State:
    def __init__(self, config: str | None, db: str | None, as_json: bool) -> None:
        self.config_path = config
        self.db = db
        self.as_json = as_json

    def build(self) -> Astrocyte:
        config = load_config(self.config_path)
        if self.db:
            config = config.model_copy(
                update={"storage": config.storage.model_copy(update={"path": self.db})}
            )
        return Astrocyte(config)


def _run(state: _State, work: Callable[[Astrocyte], Coroutine[Any, Any, T]]) -> T:
    async def main() -> T:
        async with state.build() as brain:
            return await work(brain)

    return asyncio.run(main())


def _emit(state: _State, payload: Any, human: Callable[[], str]) -> None:
    if state.as_json:
        click.echo(json.dumps(payload, indent=2, default=str, ensure_ascii=False))
    else:
        click.echo(human())


def _pairs(values: Sequence[str], option: str) -> dict[str, Any]:
    """``key=value`` options; values that parse as JSON scalars keep their type."""
    out: dict[str, Any] = {}
    for raw in values:
        key, sep, value = raw.partition("=")
        if not sep or not key:
            raise ValidationError(option, f"{raw!r} is not key=value")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out[key] = (
            parsed if isinstance(parsed, str | int | float | bool) or parsed is None else value
        )
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config",
    envvar="ASTROCYTE_CONFIG",
    type=click.Path(dir_okay=False),
    help="astrocyte.yaml to load (env ASTROCYTE_CONFIG). Default: zero config.",
)
@click.option(
    "--db",
    envvar="ASTROCYTE_DB",
    type=click.Path(dir_okay=False),
    help="Embedded store file (overrides storage.path; env ASTROCYTE_DB).",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.version_option(package_name="astrocyte")
@click.pass_context
def cli(ctx: click.Context, config: str | None, db: str | None, as_json: bool) -> None:
    """Astrocyte: memory for AI agents (retain, recall, reflect, forget)."""
    ctx.obj = _State(config, db, as_json)


@cli.command()
@click.argument("content", required=False)
@click.option("--bank", "-b", required=True, help="Bank to retain into.")
@click.option(
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False),
    help="JSONL file, one retain item per line: {content, metadata, tags, "
    "occurred_at, source, content_type}.",
)
@click.option("--tag", "tags", multiple=True, help="Tag (repeatable).")
@click.option("--meta", "meta", multiple=True, help="Metadata key=value (repeatable).")
@click.option("--occurred-at", help="When it happened (ISO-8601). Default: now.")
@click.option("--source", help="Your id for this content (becomes source_id).")
@click.option("--content-type", default="text", show_default=True)
@click.pass_obj
def retain(
    state: _State,
    content: str | None,
    bank: str,
    file: str | None,
    tags: tuple[str, ...],
    meta: tuple[str, ...],
    occurred_at: str | None,
    source: str | None,
    content_type: str,
) -> None:
    """Remember CONTENT (or every line of --file, in batches, with a progress bar)."""
    if (content is None) == (file is None):
        raise ValidationError("content", "pass CONTENT or --file, not both or neither")
    if file is not None:
        _retain_file(state, bank, Path(file))
        return
    metadata = _pairs(meta, "--meta")

    async def work(brain: Astrocyte) -> Any:
        return await brain.retain(
            content or "",
            bank,
            metadata=metadata,
            tags=list(tags),
            occurred_at=occurred_at,
            source=source,
            content_type=content_type,
        )

    result = _run(state, work)
    _emit(
        state,
        result.model_dump(mode="json"),
        lambda: (
            f"retained {result.chunk_count} memor{'y' if result.chunk_count == 1 else 'ies'}"
            f" in {bank} (source {result.source_id})"
        ),
    )


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"{path.name}:{number}", f"invalid JSON: {exc.msg}") from None
            if not isinstance(item, dict):
                raise ValidationError(f"{path.name}:{number}", "each line must be a JSON object")
            yield item


def _retain_file(state: _State, bank: str, path: Path) -> None:
    items = list(_read_jsonl(path))
    if not items:
        raise ValidationError("--file", f"{path} has no items")

    async def work(brain: Astrocyte) -> tuple[int, float]:
        stored, elapsed = 0, 0.0
        with click.progressbar(
            length=len(items), label=f"retaining into {bank}", file=sys.stderr, hidden=state.as_json
        ) as bar:
            for start in range(0, len(items), _BATCH):
                batch = items[start : start + _BATCH]
                try:
                    result = await brain.retain_many(batch, bank)
                except ValidationError as exc:
                    # Point at the file line, not the index inside the batch.
                    raise ValidationError(
                        f"{path.name} (items {start + 1}-{start + len(batch)})", exc.message
                    ) from None
                stored += result.memory_count
                elapsed += result.elapsed_ms
                bar.update(len(batch))
        return stored, elapsed

    stored, elapsed = _run(state, work)
    payload = {
        "bank_id": bank,
        "items": len(items),
        "memories": stored,
        "elapsed_ms": round(elapsed, 1),
    }
    _emit(
        state,
        payload,
        lambda: (
            f"retained {len(items)} items as {stored} memories in {bank} ({elapsed / 1000:.2f}s)"
        ),
    )


def _recall_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--bank",
        "-b",
        "banks",
        multiple=True,
        required=True,
        help="Bank to search (repeat for several).",
    )(fn)
    fn = click.option("--max-tokens", type=int, help="Token budget for returned text.")(fn)
    fn = click.option("--tag", "tags", multiple=True, help="Only memories with this tag.")(fn)
    fn = click.option("--since", help="Only memories that occurred at/after (ISO-8601).")(fn)
    fn = click.option("--until", help="Only memories that occurred before (ISO-8601).")(fn)
    fn = click.option("--filter", "filters", multiple=True, help="Metadata key=value.")(fn)
    return fn


def _recall_kwargs(
    banks: tuple[str, ...],
    max_tokens: int | None,
    tags: tuple[str, ...],
    since: str | None,
    until: str | None,
    filters: tuple[str, ...],
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "max_tokens": max_tokens,
        "tags": list(tags) or None,
        "filters": _pairs(filters, "--filter") or None,
        "time_range": (since, until) if since or until else None,
    }
    if len(banks) == 1:
        kwargs["bank_id"] = banks[0]
    else:
        kwargs["banks"] = list(banks)
    return kwargs


@cli.command()
@click.argument("query")
@_recall_options
@click.option("--max-results", "-k", type=int, default=None, help="Number of hits.")
@click.pass_obj
def recall(
    state: _State,
    query: str,
    banks: tuple[str, ...],
    max_tokens: int | None,
    tags: tuple[str, ...],
    since: str | None,
    until: str | None,
    filters: tuple[str, ...],
    max_results: int | None,
) -> None:
    """Show the memories most relevant to QUERY, ranked, with provenance."""
    kwargs = _recall_kwargs(banks, max_tokens, tags, since, until, filters)

    async def work(brain: Astrocyte) -> Any:
        return await brain.recall(query, max_results=max_results, **kwargs)

    result = _run(state, work)
    _emit(state, result.model_dump(mode="json"), lambda: render.recall(result))


@cli.command()
@click.argument("query")
@_recall_options
@click.option("--max-evidence", type=int, default=8, show_default=True)
@click.pass_obj
def reflect(
    state: _State,
    query: str,
    banks: tuple[str, ...],
    max_tokens: int | None,
    tags: tuple[str, ...],
    since: str | None,
    until: str | None,
    filters: tuple[str, ...],
    max_evidence: int,
) -> None:
    """Answer QUERY from memory, citing the memories used."""
    kwargs = _recall_kwargs(banks, max_tokens, tags, since, until, filters)

    async def work(brain: Astrocyte) -> Any:
        return await brain.reflect(query, max_evidence=max_evidence, **kwargs)

    result = _run(state, work)
    _emit(state, result.model_dump(mode="json"), lambda: render.reflect(result))


@cli.command()
@click.option("--bank", "-b", required=True)
@click.option("--id", "memory_ids", multiple=True, help="Memory id (repeatable).")
@click.option("--tag", "tags", multiple=True, help="Memories carrying all these tags.")
@click.option("--filter", "filters", multiple=True, help="Metadata key=value.")
@click.option("--before", help="Memories that occurred before this time (ISO-8601).")
@click.pass_obj
def forget(
    state: _State,
    bank: str,
    memory_ids: tuple[str, ...],
    tags: tuple[str, ...],
    filters: tuple[str, ...],
    before: str | None,
) -> None:
    """Delete memories from every store. Selectors combine with AND."""

    async def work(brain: Astrocyte) -> Any:
        return await brain.forget(
            bank,
            memory_ids=list(memory_ids) or None,
            tags=list(tags) or None,
            filters=_pairs(filters, "--filter") or None,
            before=before,
        )

    result = _run(state, work)
    _emit(
        state,
        {
            "bank_id": result.bank_id,
            "deleted_count": result.deleted_count,
            "deleted_ids": result.deleted_ids,
        },
        lambda: f"forgot {result.deleted_count} memories in {bank}",
    )


@cli.command()
@click.pass_obj
def banks(state: _State) -> None:
    """List banks with their memory counts."""
    result = _run(state, lambda brain: brain.list_banks())
    _emit(state, [b.model_dump(mode="json") for b in result], lambda: render.banks(result))


def _file_size(path: Path | None) -> int | None:
    if path is None:
        return None
    path = path.expanduser()
    return path.stat().st_size if path.exists() else None


@cli.command()
@click.pass_obj
def stats(state: _State) -> None:
    """Store, embedder and per-bank statistics."""

    async def work(brain: Astrocyte) -> dict[str, Any]:
        bank_list = await brain.list_banks()
        health = await brain.health()
        storage = brain.config.storage
        path = Path(storage.path) if storage.backend == "embedded" else None
        return {
            "storage": storage.backend,
            "path": str(path.expanduser()) if path else None,
            "size_bytes": await asyncio.to_thread(_file_size, path),
            "embedder": brain.embedder.model_id,
            "dimensions": brain.embedder.dimensions,
            "llm": brain.llm.model_id if brain.llm else None,
            "banks": len(bank_list),
            "memories": sum(b.memory_count for b in bank_list),
            "health": {k: {"ok": h.ok, "detail": h.detail} for k, h in health.items()},
        }

    result = _run(state, work)
    _emit(state, result, lambda: render.stats(result))


@cli.command()
@click.option("--keep", is_flag=True, help="Keep the demo store (path is printed).")
@click.pass_obj
def demo(state: _State, keep: bool) -> None:
    """Retain a sample multi-session conversation and answer some recalls."""
    data = resources.files("astrocyte.demo").joinpath("conversation.jsonl").read_text("utf-8")
    items = [json.loads(line) for line in data.splitlines() if line.strip()]
    questions = [
        "How did Tomas do in the half marathon?",
        "What happened to Maya's cat after the move?",
        "What did Maya buy on the Douro trip?",
        "Who is teaching Maya Portuguese?",
    ]
    workdir = Path(tempfile.mkdtemp(prefix="astrocyte-demo-"))
    db = state.db or str(workdir / "demo.db")

    async def work(brain: Astrocyte) -> list[Any]:
        await brain.retain_many(items, "demo")
        return [await brain.recall(q, "demo", max_results=3) for q in questions]

    demo_state = _State(state.config_path, db, state.as_json)
    results = _run(demo_state, work)
    if state.as_json:
        click.echo(json.dumps([r.model_dump(mode="json") for r in results], indent=2, default=str))
    else:
        click.echo(f"Retained {len(items)} conversation turns from 4 sessions into bank 'demo'.\n")
        for result in results:
            click.echo(render.recall(result))
            click.echo("")
        if keep:
            click.echo(f"Store kept at {db}; try: astrocyte --db {db} recall 'surfing' -b demo")
    if not keep and not state.db:
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()


cli.add_command(bench)
cli.add_command(config_group)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (ValidationError, ConfigError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except AstrocyteError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
