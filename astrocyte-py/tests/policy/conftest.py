"""Fixtures of the policy tests: a retain pipeline with a chosen policy on each store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from astrocyte import AstrocyteConfig, load_config
from astrocyte.embedders import HashingEmbedder
from astrocyte.factory import build_stores
from astrocyte.identity.context import AstrocyteContext
from astrocyte.pipeline.retain import RetainPipeline
from astrocyte.policy import PolicyEngine
from astrocyte.stores.storeset import StoreSet
from astrocyte.types import RetainBatchResult


class Harness:
    """A retain pipeline whose policy engine the test controls, plus its stores."""

    def __init__(self, config: AstrocyteConfig, stores: StoreSet, engine: PolicyEngine) -> None:
        self.config = config
        self.stores = stores
        self.engine = engine
        self.embedder = HashingEmbedder(dimensions=64)
        self.pipeline = RetainPipeline(config, stores, self.embedder, policy=engine)

    async def retain(
        self,
        bank_id: str,
        *contents: str | Mapping[str, Any],
        context: AstrocyteContext | None = None,
    ) -> RetainBatchResult:
        items = [
            self.pipeline.clean(
                {"content": c} if isinstance(c, str) else c, f"items[{i}]." if i else ""
            )
            for i, c in enumerate(contents)
        ]
        return await self.pipeline.retain(bank_id, items, context=context)


HarnessFactory = Callable[..., Harness]


@pytest.fixture
async def harness(backend: str, tmp_path: Path) -> AsyncIterator[HarnessFactory]:
    """``harness(policy={...}, **engine_kwargs)``: a fresh pipeline on each backend."""
    built: list[Harness] = []

    def make(policy: Mapping[str, Any] | None = None, **engine_kwargs: Any) -> Harness:
        config = load_config(
            {
                "storage": {
                    "backend": backend,
                    "path": str(tmp_path / f"astrocyte-{len(built)}.db"),
                },
                "policy": dict(policy or {}),
            }
        )
        stores = build_stores(config)
        engine = PolicyEngine(config, stores, **engine_kwargs)
        h = Harness(config, stores, engine)
        built.append(h)
        return h

    yield make
    for h in built:
        await h.engine.close()
        await h.stores.close()
