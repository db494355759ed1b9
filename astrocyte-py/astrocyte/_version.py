"""The installed version of astrocyte."""

__version__ = "0.1.0"
