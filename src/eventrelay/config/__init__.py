"""config/: the configuration file (YAML, ``${ENV}`` substitution, unknown keys refused) and its model."""

from eventrelay.config.load import load_config, parse_config
from eventrelay.config.model import Config

__all__ = ["Config", "load_config", "parse_config"]
