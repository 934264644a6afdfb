"""Configuration: the schema (`schema`, with the effect study's section in `effects`) and its
loading from YAML with overrides (`loading`). Import from here."""

from pipeline.config.effects import DEFAULT_LEVERS, EffectsConfig, Lever
from pipeline.config.loading import DEFAULT_CONFIG, load_config
from pipeline.config.schema import (
    SIZES,
    SQL_IDENTIFIER,
    SQL_QUERY,
    Config,
    DataConfig,
    ExplainConfig,
    FairnessConfig,
    FeaturesConfig,
    GenerateConfig,
    MlflowConfig,
    OutputConfig,
    PrivacyConfig,
    ScoringConfig,
    Section,
    SplitConfig,
    SqlSourceConfig,
    Tier,
    TrainConfig,
    ValidationConfig,
)

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_LEVERS",
    "SIZES",
    "SQL_IDENTIFIER",
    "SQL_QUERY",
    "Config",
    "DataConfig",
    "EffectsConfig",
    "ExplainConfig",
    "FairnessConfig",
    "FeaturesConfig",
    "GenerateConfig",
    "Lever",
    "MlflowConfig",
    "OutputConfig",
    "PrivacyConfig",
    "ScoringConfig",
    "Section",
    "SplitConfig",
    "SqlSourceConfig",
    "Tier",
    "TrainConfig",
    "ValidationConfig",
    "load_config",
]
