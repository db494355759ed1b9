"""create_llm: built-in provider, import paths, and ConfigErrors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from astrocyte.errors import ConfigError
from astrocyte.llm import OpenAIChatProvider, create_llm
from astrocyte.spi import LLMProvider


def test_builds_openai() -> None:
    llm = create_llm({"provider": "openai", "model": "gpt-4o-mini", "timeout": 5})
    assert isinstance(llm, OpenAIChatProvider)
    assert llm.model_id == "gpt-4o-mini"


def test_openai_is_the_default() -> None:
    assert isinstance(create_llm({"model": "llama3", "base_url": "http://x:1/v1"}), LLMProvider)


def test_unknown_provider() -> None:
    with pytest.raises(ConfigError) as info:
        create_llm({"provider": "anthropic", "model": "x"})
    assert info.value.key == "llm.provider"
    assert "'openai'" in str(info.value)
    assert "module:ClassName" in str(info.value)


def test_unknown_option() -> None:
    with pytest.raises(ConfigError) as info:
        create_llm({"provider": "openai", "model": "m", "temprature": 0.2})
    assert info.value.key == "llm.temprature"


def test_missing_model() -> None:
    with pytest.raises(ConfigError) as info:
        create_llm({"provider": "openai"})
    assert info.value.key == "llm.model"


def test_invalid_value() -> None:
    with pytest.raises(ConfigError) as info:
        create_llm({"model": "m", "max_tokens_param": "limit"})
    assert info.value.key == "llm.max_tokens_param"


def test_import_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_llm_plugin.py").write_text(
        "from astrocyte.spi import Completion\n"
        "class Canned:\n"
        "    def __init__(self, *, reply):\n"
        "        self.reply = reply\n"
        "    @property\n"
        "    def model_id(self):\n"
        "        return 'canned'\n"
        "    async def complete(self, messages, *, max_tokens=None, temperature=0.0):\n"
        "        return Completion(text=self.reply, model='canned')\n"
        "    async def close(self):\n"
        "        pass\n"
        "class NotAnLLM:\n"
        "    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    llm = create_llm({"provider": "my_llm_plugin:Canned", "reply": "hi"})
    assert isinstance(llm, LLMProvider)
    with pytest.raises(ConfigError) as info:
        create_llm({"provider": "my_llm_plugin:Canned"})
    assert info.value.key == "llm.reply"
    with pytest.raises(ConfigError) as info:
        create_llm({"provider": "my_llm_plugin:NotAnLLM"})
    assert "does not implement the LLMProvider protocol" in str(info.value)
