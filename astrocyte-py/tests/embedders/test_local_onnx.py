"""LocalOnnxEmbedder with the real all-MiniLM-L6-v2 int8 model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from astrocyte.embedders import HashingEmbedder, LocalOnnxEmbedder
from astrocyte.embedders.local_onnx import MODEL_PATH_ENV, VOCAB_PATH_ENV
from astrocyte.errors import EmbedderError, ValidationError
from astrocyte.spi import Embedder

# Paraphrases sharing no content word: a bag-of-words model scores them near 0.
PARAPHRASES = [
    ("The weather is lovely today", "It's sunny and warm outside"),
    ("How do I reset my password?", "I forgot my login credentials"),
    ("She is allergic to peanuts", "Nuts make her sick"),
    ("My flight to Paris was delayed", "The plane to France departed late"),
]
UNRELATED = [
    ("The stock market crashed", "My grandmother bakes bread on Sundays"),
    ("How do I reset my password?", "The giraffe is the tallest land animal"),
    ("I love playing the guitar", "Quarterly revenue grew 4 percent"),
    ("The car would not start this morning", "I love playing the guitar"),
]
MIXED_LENGTHS = [
    "Short.",
    "",
    "A medium sentence about a meeting that moved to Thursday afternoon.",
    "word " * 400,  # truncated to 256 tokens
    "ok",
    "Alice prefers green tea in the morning and coffee after lunch, she said.",
    "Ünïcödé àccents and emoji 🚀 are handled too",
    "x",
]


@pytest.fixture(scope="module")
def embedder() -> Iterator[LocalOnnxEmbedder]:
    emb = LocalOnnxEmbedder()
    yield emb
    asyncio.run(emb.close())


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


@pytest.mark.model
async def test_shape_dtype_and_unit_rows(embedder: LocalOnnxEmbedder) -> None:
    vecs = await embedder.embed(MIXED_LENGTHS)
    assert vecs.shape == (len(MIXED_LENGTHS), 384)
    assert vecs.dtype == np.float32
    assert np.isfinite(vecs).all()
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert embedder.model_id == "all-MiniLM-L6-v2-int8"
    assert embedder.dimensions == 384
    assert isinstance(embedder, Embedder)


@pytest.mark.model
async def test_semantic_neighbours(embedder: LocalOnnxEmbedder) -> None:
    cat, kitten, revenue = await embedder.embed(
        ["The cat sat on the mat", "A kitten rested on the rug", "Quarterly revenue grew 4 percent"]
    )
    assert cos(cat, kitten) > cos(cat, revenue) + 0.3


@pytest.mark.model
async def test_paraphrases_close_unrelated_far(embedder: LocalOnnxEmbedder) -> None:
    for a, b in PARAPHRASES:
        va, vb = await embedder.embed([a, b])
        assert cos(va, vb) > 0.5, (a, b, cos(va, vb))
    for a, b in UNRELATED:
        va, vb = await embedder.embed([a, b])
        assert cos(va, vb) < 0.3, (a, b, cos(va, vb))


async def test_the_paraphrase_check_would_catch_a_hashing_embedder() -> None:
    # Guards the test above: it must not pass for an embedder that only counts words.
    hashing = HashingEmbedder()
    for a, b in PARAPHRASES:
        va, vb = await hashing.embed([a, b])
        assert cos(va, vb) < 0.5, (a, b)


@pytest.mark.model
async def test_batched_equals_one_by_one(embedder: LocalOnnxEmbedder) -> None:
    # Small batches force the length-sorting path to split and reorder.
    small = LocalOnnxEmbedder(batch_size=3, max_batch_tokens=256)
    try:
        together = await small.embed(MIXED_LENGTHS)
        alone = np.vstack([await embedder.embed([text]) for text in MIXED_LENGTHS])
        default_batching = await embedder.embed(MIXED_LENGTHS)
    finally:
        await small.close()
    np.testing.assert_allclose(together, alone, atol=1e-4)
    np.testing.assert_allclose(default_batching, alone, atol=1e-4)


@pytest.mark.model
async def test_long_text_is_truncated_to_256_tokens(embedder: LocalOnnxEmbedder) -> None:
    head = "the meeting moved to thursday " * 60  # 300 tokens, past the limit
    a, b, c = await embedder.embed([head, head + "about quarterly revenue", "zebra " * 5000])
    # Whatever follows token 256 cannot change the vector.
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert np.isfinite(c).all()
    assert abs(float(np.linalg.norm(c)) - 1.0) < 1e-5


@pytest.mark.model
async def test_deterministic_across_calls(embedder: LocalOnnxEmbedder) -> None:
    first = await embedder.embed(MIXED_LENGTHS)
    second = await embedder.embed(list(reversed(MIXED_LENGTHS)))
    np.testing.assert_allclose(first, second[::-1], atol=1e-6)
    np.testing.assert_array_equal(first, await embedder.embed(MIXED_LENGTHS))


@pytest.mark.model
async def test_empty_string_is_embedded(embedder: LocalOnnxEmbedder) -> None:
    (vec,) = await embedder.embed([""])
    assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-5


async def test_empty_list_needs_no_model(tmp_path: Path) -> None:
    # A model file that would fail to load proves nothing was loaded.
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not an onnx file")
    emb = LocalOnnxEmbedder(model_path=bogus)
    vecs = await emb.embed([])
    assert vecs.shape == (0, 384)
    assert vecs.dtype == np.float32
    with pytest.raises(EmbedderError) as info:
        await emb.embed(["now it must load"])
    assert "bogus.onnx" in str(info.value)
    await emb.close()


@pytest.mark.model
async def test_runs_off_the_event_loop(embedder: LocalOnnxEmbedder) -> None:
    texts = [
        f"Sentence number {i} about the project deadline, lunch plans and the release."
        for i in range(600)
    ]
    ticks: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    started = time.perf_counter()
    await embedder.embed(texts)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    during = [t for t in ticks if t >= started]
    gaps = np.diff(during)
    assert elapsed > 0.3, "the batch was too small to prove anything"
    assert len(during) > 20
    # A blocked loop would show one gap as long as the whole embed call.
    assert gaps.max() < min(0.5, elapsed / 3), (gaps.max(), elapsed)


@pytest.mark.model
async def test_concurrent_callers_get_their_own_rows(embedder: LocalOnnxEmbedder) -> None:
    singles = await embedder.embed(MIXED_LENGTHS)
    results = await asyncio.gather(*(embedder.embed([t]) for t in MIXED_LENGTHS))
    np.testing.assert_allclose(np.vstack(results), singles, atol=1e-4)


@pytest.mark.model
async def test_warmup_and_health() -> None:
    emb = LocalOnnxEmbedder(intra_op_num_threads=1)
    await emb.warmup()
    status = await emb.health()
    assert status.ok and status.detail == "all-MiniLM-L6-v2-int8"
    await emb.close()
    with pytest.raises(EmbedderError, match="closed"):
        await emb.embed(["after close"])


@pytest.mark.model
async def test_env_vars_override_paths(
    embedder: LocalOnnxEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model.onnx"
    vocab = tmp_path / "vocab.txt"
    model.write_bytes(embedder.model_path.read_bytes())
    vocab.write_text(embedder.vocab_path.read_text())
    monkeypatch.setenv(MODEL_PATH_ENV, str(model))
    monkeypatch.setenv(VOCAB_PATH_ENV, str(vocab))
    emb = LocalOnnxEmbedder()
    assert (emb.model_path, emb.vocab_path) == (model, vocab)
    try:
        np.testing.assert_allclose(
            await emb.embed(["same model"]), await embedder.embed(["same model"]), atol=1e-6
        )
    finally:
        await emb.close()


def test_missing_model_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODEL_PATH_ENV, str(tmp_path / "nowhere.onnx"))
    with pytest.raises(EmbedderError) as info:
        LocalOnnxEmbedder()
    assert "nowhere.onnx" in str(info.value)
    assert MODEL_PATH_ENV in str(info.value)
    assert info.value.fix is not None and "pip install" in info.value.fix


def test_missing_vocab(tmp_path: Path) -> None:
    with pytest.raises(EmbedderError, match="vocabulary"):
        LocalOnnxEmbedder(vocab_path=tmp_path / "vocab.txt")


@pytest.mark.model
def test_wrong_dimensions_for_model_fails_on_load() -> None:
    emb = LocalOnnxEmbedder(dimensions=768)
    with pytest.raises(EmbedderError, match="384-dimensional"):
        asyncio.run(emb.embed(["x"]))
    asyncio.run(emb.close())


async def test_rejects_bad_input_and_options() -> None:
    emb = LocalOnnxEmbedder()
    with pytest.raises(ValidationError) as info:
        await emb.embed("one string")
    assert info.value.field == "texts"
    with pytest.raises(ValidationError) as info:
        await emb.embed(["fine", None])  # type: ignore[list-item]
    assert info.value.field == "texts[1]"
    await emb.close()
    for bad in ({"batch_size": 0}, {"max_length": 1}, {"intra_op_num_threads": 0}):
        with pytest.raises(ValidationError):
            LocalOnnxEmbedder(**bad)  # type: ignore[arg-type]
