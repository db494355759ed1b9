"""create_embedder: built-ins, import paths, and a ConfigError naming every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from astrocyte.embedders import (
    HashingEmbedder,
    LocalOnnxEmbedder,
    OpenAIEmbedder,
    create_embedder,
)
from astrocyte.errors import ConfigError, EmbedderError
from astrocyte.spi import Embedder


def test_builds_each_builtin() -> None:
    hashing = create_embedder({"provider": "hashing", "dimensions": 64})
    assert isinstance(hashing, HashingEmbedder)
    assert hashing.dimensions == 64

    openai = create_embedder(
        {"provider": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1", "dimensions": 4}
    )
    assert isinstance(openai, OpenAIEmbedder)
    assert openai.dimensions == 4

    local = create_embedder({"provider": "local", "intra_op_num_threads": 1})
    assert isinstance(local, LocalOnnxEmbedder)
    assert (local.model_id, local.dimensions) == ("all-MiniLM-L6-v2-int8", 384)


def test_local_is_the_default() -> None:
    assert isinstance(create_embedder({}), LocalOnnxEmbedder)


def test_unknown_provider_lists_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        create_embedder({"provider": "sentence-transformers"})
    err = info.value
    assert err.key == "embedder.provider"
    assert "sentence-transformers" in str(err)
    for name in ("local", "openai", "hashing", "module:ClassName"):
        assert name in str(err)


def test_unknown_option_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        create_embedder({"provider": "hashing", "dimension": 64})
    assert info.value.key == "embedder.dimension"
    assert "dimensions" in str(info.value)  # the fix lists the valid options


def test_missing_required_option_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        create_embedder({"provider": "openai"})
    assert info.value.key == "embedder.model"


def test_invalid_value_is_reported_at_its_key() -> None:
    with pytest.raises(ConfigError) as info:
        create_embedder({"provider": "hashing", "dimensions": 0})
    assert info.value.key == "embedder.dimensions"
    with pytest.raises(ConfigError) as info:
        create_embedder({"provider": "openai", "model": "m", "base_url": "localhost:8000"})
    assert info.value.key == "embedder.base_url"


def test_custom_key_prefix() -> None:
    with pytest.raises(ConfigError) as info:
        create_embedder({"provider": "nope"}, key="banks.work.embedder")
    assert info.value.key == "banks.work.embedder.provider"


def test_unset_api_key_env_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASTROCYTE_TEST_NO_SUCH_KEY", raising=False)
    with pytest.raises(ConfigError) as info:
        create_embedder(
            {"provider": "openai", "model": "m", "api_key_env": "ASTROCYTE_TEST_NO_SUCH_KEY"}
        )
    assert info.value.key == "embedder.api_key_env"


@pytest.mark.parametrize("spec", [None, ["hashing"], "hashing"])
def test_spec_must_be_a_mapping(spec: object) -> None:
    with pytest.raises(ConfigError) as info:
        create_embedder(spec)  # type: ignore[arg-type]
    assert info.value.key == "embedder"


@pytest.mark.parametrize("provider", [3, "", None])
def test_provider_must_be_a_non_empty_string(provider: object) -> None:
    with pytest.raises(ConfigError) as info:
        create_embedder({"provider": provider})
    assert info.value.key == "embedder.provider"


def test_import_path_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_embedder_plugin.py").write_text(
        "import numpy as np\n"
        "class Tiny:\n"
        "    model_id = 'tiny'\n"
        "    def __init__(self, width=3):\n"
        "        self.dimensions = width\n"
        "    async def embed(self, texts, *, kind='document'):\n"
        "        return np.ones((len(texts), self.dimensions), np.float32)\n"
        "    async def close(self):\n"
        "        pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    emb = create_embedder({"provider": "my_embedder_plugin:Tiny", "width": 5})
    assert isinstance(emb, Embedder)
    assert emb.dimensions == 5
    with pytest.raises(ConfigError) as info:
        create_embedder({"provider": "my_embedder_plugin:Tiny", "depth": 5})
    assert info.value.key == "embedder.depth"


def test_import_path_to_builtin_class() -> None:
    emb = create_embedder({"provider": "astrocyte.embedders.hashing:HashingEmbedder"})
    assert isinstance(emb, HashingEmbedder)


@pytest.mark.parametrize(
    ("provider", "needle"),
    [
        ("no_such_module_xyz:Thing", "cannot import"),
        ("astrocyte.embedders.hashing:NoSuchClass", "no attribute"),
        ("astrocyte.embedders.hashing:", "must look like"),
        ("collections:OrderedDict", "does not implement the Embedder protocol"),
        ("astrocyte.embedders.local_onnx:MODEL_PATH_ENV", "not a class"),
    ],
)
def test_bad_import_paths(provider: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        create_embedder({"provider": provider})
    assert info.value.key == "embedder.provider"
    assert needle in str(info.value)


def test_missing_local_model_is_an_embedder_error(tmp_path: Path) -> None:
    with pytest.raises(EmbedderError) as info:
        create_embedder({"provider": "local", "model_path": str(tmp_path / "absent.onnx")})
    assert "absent.onnx" in str(info.value)
    assert info.value.fix is not None and "pip install" in info.value.fix
