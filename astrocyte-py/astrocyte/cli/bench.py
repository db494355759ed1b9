"""``astrocyte bench``: retrieval quality (LoCoMo, LongMemEval) and performance suites.

Every subcommand prints a readable table and writes the full JSON report to ``--out``.
Data files are never downloaded: pass the path of your copy with ``--data``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from astrocyte.errors import ValidationError


def _ks(value: str) -> list[int]:
    try:
        ks = sorted({int(part) for part in value.split(",") if part.strip()})
    except ValueError:
        raise ValidationError(
            "--k", f"{value!r} is not a comma-separated list of integers"
        ) from None
    if not ks or ks[0] < 1:
        raise ValidationError("--k", "values must be positive integers, e.g. 5,10,20")
    return ks


def _write(report: dict[str, Any], out: str) -> None:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    click.echo(f"wrote {path}", err=True)


_config_option = click.option(
    "--config", "config", type=click.Path(exists=True, dir_okay=False),
    help="astrocyte.yaml for the run (default: zero config, temporary store).",
)  # fmt: skip


@click.group()
def bench() -> None:
    """Benchmarks: quality on LoCoMo/LongMemEval (no LLM) and performance."""


def _quality_command(name: str) -> click.Command:
    @click.option(
        "--data",
        required=True,
        type=click.Path(exists=True, dir_okay=False),
        help=f"Path to the {name} JSON file (not shipped; bring your copy).",
    )
    @click.option("--k", "k", default="5,10,20", show_default=True, help="Cut-offs for @k.")
    @_config_option
    @click.option(
        "--ablation",
        is_flag=True,
        help="Run the ladder: keyword, semantic, RRF, +graph, +temporal, +rerank.",
    )
    @click.option("--limit", type=int, default=None, help="Only the first N samples/questions.")
    @click.option("--out", default=f"{name}-results.json", show_default=True)
    def command(
        data: str, k: str, config: str | None, ablation: bool, limit: int | None, out: str
    ) -> None:
        if limit is not None and limit < 1:
            raise ValidationError("--limit", "must be a positive integer")
        if name == "locomo":
            from astrocyte.bench.locomo import render_report
            from astrocyte.bench.locomo import run_locomo as run
        else:
            from astrocyte.bench.longmemeval import render_report
            from astrocyte.bench.longmemeval import run_longmemeval as run
        report = asyncio.run(
            run(
                Path(data),
                ks=_ks(k),
                config=Path(config) if config else None,
                ablation=ablation,
                limit=limit,
            )
        )
        click.echo(render_report(report))
        _write(report, out)

    command.__doc__ = f"Retrieval quality on {name} (evidence recall, MRR, NDCG; no LLM)."
    return click.command(name=name)(command)


bench.add_command(_quality_command("locomo"))
bench.add_command(_quality_command("longmemeval"))


@bench.command()
@click.option(
    "--sizes",
    default="1000,10000,100000",
    show_default=True,
    help="Bank sizes to measure at (the bank grows through them).",
)
@click.option("--queries", type=int, default=200, show_default=True, help="Recalls per size.")
@click.option("--batch", type=int, default=512, show_default=True, help="retain_many batch size.")
@_config_option
@click.option("--out", default="perf-results.json", show_default=True)
@click.option(
    "--plot",
    "plot_path",
    default=None,
    help="Also write a PNG of latency vs bank size (needs astrocyte[bench]).",
)
def perf(
    sizes: str, queries: int, batch: int, config: str | None, out: str, plot_path: str | None
) -> None:
    """Bulk/single retain, recall p50/p95/p99 by bank size, RSS, cold start."""
    from astrocyte.bench.perf import plot, render, run_perf

    size_list = _ks(sizes)
    for name, value in (("--queries", queries), ("--batch", batch)):
        if value < 1:
            raise ValidationError(name, "must be a positive integer")
    report = asyncio.run(
        run_perf(size_list, queries=queries, batch=batch, config=Path(config) if config else None)
    )
    click.echo(render(report))
    _write(report, out)
    if plot_path:
        if plot(report, Path(plot_path)):
            click.echo(f"wrote {plot_path}", err=True)
        else:
            click.echo("matplotlib is not installed: pip install 'astrocyte[bench]'", err=True)
