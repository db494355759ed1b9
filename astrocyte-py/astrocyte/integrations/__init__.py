"""Adapters that plug Astrocyte into agent frameworks, one module per framework.

Each module is an optional import: it imports its framework at module top and fails with
an :class:`ImportError` naming the extra to install when the framework is missing. This
package itself imports no framework, so ``import astrocyte`` never needs one.

- :mod:`~astrocyte.integrations.langchain` — LangChain / LangGraph
  (``pip install "astrocyte[langchain]"``): LangGraph ``BaseStore``, ``BaseRetriever``,
  ``remember`` / ``recall`` tools.
- :mod:`~astrocyte.integrations.llamaindex` — ``astrocyte[llamaindex]``: retriever and a
  long-term ``Memory`` block.
- :mod:`~astrocyte.integrations.autogen` — ``astrocyte[autogen]``: ``Memory`` protocol.
- :mod:`~astrocyte.integrations.pydantic_ai` — ``astrocyte[pydantic-ai]``: toolset + deps.
- :mod:`~astrocyte.integrations.openai_agents` — ``astrocyte[openai-agents]``: ``Session``
  and function tools.
- :mod:`~astrocyte.integrations.haystack` — ``astrocyte[haystack]``: retriever and writer
  components.
- :mod:`~astrocyte.integrations.smolagents` — ``astrocyte[smolagents]``: tools.
- :mod:`~astrocyte.integrations.agno` — ``astrocyte[agno]``: toolkit and memory manager.
- :mod:`~astrocyte.integrations.google_adk` — ``astrocyte[google-adk]``: memory service.
- :mod:`~astrocyte.integrations.atomic_agents` — ``astrocyte[atomic-agents]``:
  ``MemoryBackend``.
- :mod:`~astrocyte.integrations.common` — what they share (no framework): the sync
  bridge, hit provenance, the tool bodies.

CrewAI, Semantic Kernel and DSPy are separate packages (``astrocyte-integration-crewai``,
``-semantic-kernel``, ``-dspy``): their dependencies conflict with the others'.

Every adapter takes an :class:`astrocyte.Astrocyte` and an optional
``context: AstrocyteContext``, so each call runs as that caller and is checked against
``access_grants`` like any direct call. See docs/integrations.md.
"""
