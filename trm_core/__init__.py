"""trm_core: the Tiny Recursive Model, its WTA trainer and its evaluation. Imports only torch/numpy.

`train` and `evaluate` are imported lazily so that `import trm_core` stays cheap.
"""
from trm_core.config import ConfigError, TrainConfig, resolve

__all__ = ["ConfigError", "TrainConfig", "evaluate", "resolve", "train"]


def __getattr__(name):
    if name == "train":
        from trm_core.trainer import train

        return train
    if name == "evaluate":
        from trm_core.evaluation import evaluate

        return evaluate
    raise AttributeError(name)
