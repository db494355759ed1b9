"""Memory around an OpenAI-compatible client.

``with_memory(openai.OpenAI(), brain_or_gateway_url, bank="user-42")`` returns a client
whose ``chat.completions.create`` recalls from Astrocyte first, injects the memories as
a system message, and retains the exchange in the background (streams included).
"""

from astrocyte_llm_wrapper.backends import (
    BrainMemory,
    GatewayMemory,
    MemoryBackend,
    MemoryUnavailable,
    Scope,
)
from astrocyte_llm_wrapper.options import MemoryOptions
from astrocyte_llm_wrapper.prompt import DEFAULT_TEMPLATE, format_memories
from astrocyte_llm_wrapper.wrapper import (
    AsyncMemoryOpenAI,
    AsyncMemoryStream,
    MemoryOpenAI,
    MemorySettings,
    MemoryStats,
    MemoryStream,
    with_memory,
)

__all__ = [
    "DEFAULT_TEMPLATE",
    "AsyncMemoryOpenAI",
    "AsyncMemoryStream",
    "BrainMemory",
    "GatewayMemory",
    "MemoryBackend",
    "MemoryOpenAI",
    "MemoryOptions",
    "MemorySettings",
    "MemoryStats",
    "MemoryStream",
    "MemoryUnavailable",
    "Scope",
    "format_memories",
    "with_memory",
]
__version__ = "0.1.0"
