"""A base for experiment configs that a search places in their own folder."""

from __future__ import annotations

from configs import pydraclass

__all__ = ["BaseExperimentConfig"]


@pydraclass
class BaseExperimentConfig:
    """An experiment config with a ``base_dir``: the folder its job writes to.

    Subclass it for your experiment so that ``get_experiment_config_and_base_dir``
    can set ``config.base_dir`` (a strict config rejects unknown attributes).

    Example:
        >>> from configs import pydraclass
        >>> @pydraclass
        ... class TrainConfig(BaseExperimentConfig):
        ...     lr: float = 1e-3
        >>> config = TrainConfig(lr=0.1)
        >>> config.base_dir = "results/lr_0.1"
        >>> config.base_dir
        'results/lr_0.1'
    """

    #: The experiment's folder: its log, job files and whatever it saves.
    base_dir: str | None = None
