"""HashingEmbedder: deterministic, normalised, cheap, and honest about not being semantic."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from astrocyte.embedders import HashingEmbedder
from astrocyte.errors import ValidationError
from astrocyte.spi import Embedder


async def test_shape_dtype_and_unit_rows() -> None:
    emb = HashingEmbedder(dimensions=64)
    vecs = await emb.embed(["hello world", "the quick brown fox", "", "!!!"])
    assert vecs.shape == (4, 64)
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-6)
    assert emb.dimensions == 64
    assert emb.model_id == "hashing-64"


async def test_empty_batch() -> None:
    vecs = await HashingEmbedder().embed([])
    assert vecs.shape == (0, 256)
    assert vecs.dtype == np.float32


async def test_shared_words_score_higher_than_disjoint() -> None:
    vecs = await HashingEmbedder().embed(
        ["alice likes green tea", "alice likes black tea", "quarterly revenue grew"]
    )
    assert vecs[0] @ vecs[1] > 0.3
    assert abs(vecs[0] @ vecs[2]) < 0.3


async def test_bigrams_make_word_order_matter() -> None:
    a, b = await HashingEmbedder().embed(["dog bites man", "man bites dog"])
    assert 0.2 < float(a @ b) < 0.99


async def test_case_and_punctuation_insensitive() -> None:
    a, b = await HashingEmbedder().embed(["Hello, World!", "hello world"])
    np.testing.assert_array_equal(a, b)


def test_stable_across_processes_with_different_hash_seeds() -> None:
    # Python's hash() would differ between these two interpreters.
    script = (
        "import asyncio, sys\n"
        "from astrocyte.embedders.hashing import HashingEmbedder\n"
        "v = asyncio.run(HashingEmbedder(32).embed(['stable across runs', 'x y z']))\n"
        "sys.stdout.write(v.tobytes().hex())\n"
    )
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1


async def test_kind_is_ignored() -> None:
    emb = HashingEmbedder()
    doc = await emb.embed(["same text"], kind="document")
    query = await emb.embed(["same text"], kind="query")
    np.testing.assert_array_equal(doc, query)


async def test_rejects_bare_string_and_non_strings() -> None:
    emb = HashingEmbedder()
    with pytest.raises(ValidationError) as info:
        await emb.embed("not a list")
    assert info.value.field == "texts"
    with pytest.raises(ValidationError) as info:
        await emb.embed(["ok", 3])  # type: ignore[list-item]
    assert info.value.field == "texts[1]"


@pytest.mark.parametrize("bad", [0, 1, -5, True, 2.5])
def test_rejects_bad_dimensions(bad: object) -> None:
    with pytest.raises(ValidationError):
        HashingEmbedder(dimensions=bad)  # type: ignore[arg-type]


async def test_is_an_embedder() -> None:
    emb = HashingEmbedder()
    assert isinstance(emb, Embedder)
    assert (await emb.health()).ok
    await emb.close()
