"""Benchmarks: LLM-free retrieval quality on public formats, and core performance.

* :mod:`astrocyte.bench.metrics`: pure ranking metrics (recall@k, MRR, NDCG@k, ...).
* :mod:`astrocyte.bench.locomo`: the LoCoMo conversation benchmark (evidence turns).
* :mod:`astrocyte.bench.longmemeval`: the LongMemEval benchmark (answer sessions/turns).
* :mod:`astrocyte.bench.quality`: what both share: the run's stores and embedder, the
  ablation ladder, the report and its text rendering.
* :mod:`astrocyte.bench.perf`: throughput, latency and memory at scale.

Nothing heavy is imported here, so ``import astrocyte.bench`` stays cheap for the CLI.
The data sets are not shipped: pass the path of your copy of the public JSON files.
"""
