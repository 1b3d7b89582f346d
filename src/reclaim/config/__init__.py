"""Configuration: the TOML file as validated, typed data."""

from reclaim.config.durations import format_duration, parse_duration
from reclaim.config.loader import load_config, parse_config, validate_config
from reclaim.config.model import (
    CatalogConfig,
    CollectionConfig,
    CollectionReferenceConfig,
    Config,
    DashboardConfig,
    DatabaseConfig,
    ReferenceConfig,
    StoreConfig,
)
from reclaim.config.secrets import SecretFilter, install_log_filter, mask_url, redact, register_secret

__all__ = [
    "CatalogConfig",
    "CollectionConfig",
    "CollectionReferenceConfig",
    "Config",
    "DashboardConfig",
    "DatabaseConfig",
    "ReferenceConfig",
    "SecretFilter",
    "StoreConfig",
    "format_duration",
    "install_log_filter",
    "load_config",
    "mask_url",
    "parse_config",
    "parse_duration",
    "redact",
    "register_secret",
    "validate_config",
]
