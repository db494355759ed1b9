"""Constants shared by the fixtures and the tests (a module of its own: ``conftest`` is an
ambiguous name when several test suites run in one pytest session)."""

API_KEY = "apim-test-key-0123456789"
"""The Astrocyte gateway's API key in these tests (it wants 16+ characters)."""

PRINCIPAL = "user:alice"
