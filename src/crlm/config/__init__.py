"""The one reader of params.yaml: typed, frozen, validated config objects.

Each section of params.yaml maps to one dataclass of `schema`; `loader` reads the
file into them. Unknown or missing keys raise an error that names the key, so a
typo in `dvc exp run -S ...` fails loudly instead of being ignored.
"""

from crlm.config.checks import ConfigError
from crlm.config.loader import choices, cli_params, load_params, model_config_from_dict, params_from_dict
from crlm.config.schema import (AugmentConfig, CRFConfig, DataConfig, EmbedConfig, EvaluateConfig,
                                LitsConfig, ModelConfig, Params, PhantomConfig, PrepareConfig, QCConfig,
                                SlicesConfig, SplitConfig, StatsConfig, SurvivalConfig, TciaConfig,
                                TrainConfig)

__all__ = ["AugmentConfig", "CRFConfig", "ConfigError", "DataConfig", "EmbedConfig",
           "EvaluateConfig", "LitsConfig", "ModelConfig", "Params", "PhantomConfig", "PrepareConfig", "QCConfig",
           "SlicesConfig", "SplitConfig", "StatsConfig", "SurvivalConfig", "TciaConfig", "TrainConfig", "choices",
           "cli_params", "load_params", "model_config_from_dict", "params_from_dict"]
