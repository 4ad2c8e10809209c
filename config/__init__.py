"""Typed settings for the broadcaster: one TOML file plus BROADCASTER_<SECTION>__<KEY> environment overrides."""

from config.loading import ConfigError, load_settings, resolve_config_path
from config.settings import CHANNEL_NAMES, Settings

__all__ = ["CHANNEL_NAMES", "ConfigError", "Settings", "load_settings", "resolve_config_path"]
