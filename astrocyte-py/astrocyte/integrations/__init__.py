"""Adapters that plug Astrocyte into agent frameworks, one module per framework.

Each module is an optional import: it imports its framework at module top and fails with
an :class:`ImportError` naming the extra to install when the framework is missing. This
package itself imports no framework, so ``import astrocyte`` never needs one.

- :mod:`astrocyte.integrations.langchain` — LangChain / LangGraph
  (``pip install "astrocyte[langchain]"``): a LangGraph ``BaseStore``, a LangChain
  ``BaseRetriever`` and ``remember`` / ``recall`` tools.

Every adapter takes an :class:`astrocyte.Astrocyte` and an optional
``context: AstrocyteContext``, so each call runs as that caller and is checked against
``access_grants`` like any direct call. See docs/integrations.md.
"""
