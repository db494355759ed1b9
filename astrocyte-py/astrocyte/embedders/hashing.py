"""A deterministic, dependency-free embedder for unit tests. NOT semantic."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np

from astrocyte.errors import ValidationError
from astrocyte.spi import HealthStatus, Vector

__all__ = ["HashingEmbedder"]

_WORD = re.compile(r"\w+")
# Stands in for texts with no words, so even "" maps to a unit vector.
_EMPTY_FEATURE = "\x00empty"


@lru_cache(maxsize=65536)
def _feature_hash(feature: str) -> int:
    # blake2b, not hash(): Python salts str hashes per process, and test vectors
    # must be identical across runs and machines.
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class HashingEmbedder:
    """Feature-hashing of lower-cased word unigrams and bigrams. UNIT TESTS ONLY.

    Each unigram and bigram is hashed (blake2b, so stable across processes) to one of
    ``dimensions`` buckets with a hash-derived sign; the counts are L2-normalised.
    Texts score as similar only when they share words, so this embedder knows
    nothing about meaning: never use it for real recall. It exists so tests can run
    without loading a model, with vectors that are deterministic and cheap.
    """

    def __init__(self, dimensions: int = 256) -> None:
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 2:
            raise ValidationError("dimensions", f"must be an integer >= 2, got {dimensions!r}")
        self._dimensions = dimensions

    @property
    def model_id(self) -> str:
        """``hashing-<dimensions>``: vectors of different widths never mix."""
        return f"hashing-{self._dimensions}"

    @property
    def dimensions(self) -> int:
        """Length of every vector."""
        return self._dimensions

    async def embed(
        self, texts: Sequence[str], *, kind: Literal["document", "query"] = "document"
    ) -> Vector:
        """Embed ``texts``; ``kind`` is ignored. Returns ``(len(texts), dimensions)``."""
        del kind
        if isinstance(texts, str):
            raise ValidationError(
                "texts", "expected a sequence of strings, got one str", fix="wrap it in a list"
            )
        out = np.zeros((len(texts), self._dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValidationError(f"texts[{row}]", f"expected str, got {type(text).__name__}")
            for feature in _features(text):
                h = _feature_hash(feature)
                # The sign bit comes from the high end of the hash, independent of the
                # bucket, so colliding features cancel on average instead of adding up.
                out[row, h % self._dimensions] += 1.0 if (h >> 63) else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm == 0.0:
                # Features cancelled exactly; fall back to the empty-text vector so
                # the row stays unit-length.
                h = _feature_hash(_EMPTY_FEATURE)
                out[row, h % self._dimensions] = 1.0
            else:
                out[row] /= norm
        return out

    async def health(self) -> HealthStatus:
        """Always healthy: there is nothing to load."""
        return HealthStatus(ok=True, detail=self.model_id)

    async def close(self) -> None:
        """Nothing to release."""


def _features(text: str) -> list[str]:
    words = _WORD.findall(text.lower())
    if not words:
        return [_EMPTY_FEATURE]
    # The separator cannot occur inside a \w+ token, so no bigram equals a unigram.
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
