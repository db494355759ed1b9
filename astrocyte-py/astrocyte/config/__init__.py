"""Configuration: schema and loader."""

from astrocyte.config.loader import load_config
from astrocyte.config.schema import AstrocyteConfig

__all__ = ["AstrocyteConfig", "load_config"]
