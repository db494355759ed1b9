"""The installed version of astrocyte-mcp."""

__version__ = "0.1.0"
