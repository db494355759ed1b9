"""CrewAI integration for Astrocyte (``pip install astrocyte-integration-crewai``).

- :class:`AstrocyteStorage` — CrewAI's unified-memory ``StorageBackend`` over one
  Astrocyte bank; :func:`astrocyte_memory` builds the ``Memory`` around it for
  ``Crew(memory=...)`` / ``Agent(memory=...)``.
- :class:`RememberTool` / :class:`RecallTool` — ``remember`` and ``recall`` as CrewAI
  ``BaseTool`` subclasses over :class:`astrocyte.integrations.common.MemoryTools`.

**Mapping.** One storage is one bank. A CrewAI ``MemoryRecord`` becomes one memory
(chunks, if long) whose text is the record's content and whose ``source_id`` is the
record id; its metadata holds ``crewai_id``, ``crewai_scope`` (the scope path, e.g.
``/crew/research-crew/agent/researcher/...``), ``crewai_categories`` and
``crewai_metadata`` (JSON), ``crewai_importance``, ``crewai_source``,
``crewai_private`` and ``crewai_created_at``. Scopes are therefore paths inside the
bank, not banks: give each crew (or each tenant of a crew) its own storage and bank.
Scope prefixes are matched per path segment (``/a`` holds ``/a/b``, not ``/ab``).

**Search.** CrewAI hands a storage only the query vector. The storage's own
:meth:`AstrocyteStorage.embedder` (which ``astrocyte_memory`` installs as the Memory's
embedder) embeds with the brain's embedder and remembers each vector's text, so
``search`` runs :meth:`Astrocyte.recall` on the text (semantic + keyword fusion),
filters by scope, categories and metadata, and scores each record by the cosine
similarity of its text to the query (CrewAI's thresholds expect a 0–1 similarity).
No CrewAI embedder (and no OpenAI key) is needed.

**Identity.** Every call runs as ``context`` and is checked against
``access_grants``: saving needs ``write``; searching and listing need ``read``;
delete / update / reset need ``read`` and ``forget`` (update also ``write``).
CrewAI saves task results in a background thread and logs a failed save
(``MemorySaveFailedEvent``) instead of failing the task; a denied recall before a
task degrades to no memories. Call the storage directly to see ``AccessDenied``.

**Limits.** CrewAI's memory still uses an LLM of its own (``Memory(llm=...)``) to
extract memories from task results and infer scope/categories/importance; Astrocyte
does not replace that step. A search hit's content is the matching chunk; listing
and ``get_record`` join the chunks. Memories retained into the bank by other means
(no ``crewai_id``) are ignored. Each search re-embeds its candidate hits once to
compute similarities. ``last_accessed`` equals ``created_at`` (records are not
touched on recall).
"""

from astrocyte_crewai.storage import ID_FIELD, SCOPE_FIELD, AstrocyteStorage, astrocyte_memory
from astrocyte_crewai.tools import RecallTool, RememberTool, make_memory_tools

__all__ = [
    "ID_FIELD",
    "SCOPE_FIELD",
    "AstrocyteStorage",
    "RecallTool",
    "RememberTool",
    "astrocyte_memory",
    "make_memory_tools",
]
