"""Configuration: the schema of ``astrocyte.yaml``, its layering and its loader.

* :func:`load_config` - a file, a mapping or nothing (zero config) to a validated
  :class:`AstrocyteConfig`; every problem is a :class:`~astrocyte.errors.ConfigError`
  naming the key path (all of them: :class:`ConfigProblems`).
* :func:`find_config_file` - the opt-in lookup of ``$ASTROCYTE_CONFIG`` /
  ``./astrocyte.yaml``; nothing calls it implicitly.
* :func:`mask_secrets` - a config dump with secrets replaced, for display.

See docs/configuration.md for every key, the layering order and ``${ENV}`` rules.
"""

from astrocyte.config.loader import find_config_file, load_config
from astrocyte.config.masking import mask_secrets
from astrocyte.config.problems import ConfigProblems
from astrocyte.config.schema import AstrocyteConfig

__all__ = ["AstrocyteConfig", "ConfigProblems", "find_config_file", "load_config", "mask_secrets"]
