"""The Optuna define-by-run search space and its mapping back onto the config schema."""

from __future__ import annotations

from typing import Any

from configs.schema import Choices, FloatRange, SearchConfig

ARCH = "arch"


def encoder_param(arch: str) -> str:
    # Optuna refuses one parameter name with different choice sets, so each architecture gets
    # its own encoder parameter; trial_overrides() maps it back to model.encoder.
    return f"encoder_{arch}"


class DefineByRunSpace:
    """A define-by-run space: arch, then an encoder from that arch's list, then search.params.

    A class, not a closure: Tune pickles the searcher (with its space) into the experiment
    state so an interrupted search can resume.
    """

    def __init__(self, search: SearchConfig):
        self.archs = {arch: list(encoders) for arch, encoders in search.archs.items()}
        self.params = dict(search.params)

    def __call__(self, trial) -> None:
        arch = trial.suggest_categorical(ARCH, list(self.archs))
        trial.suggest_categorical(encoder_param(arch), self.archs[arch])
        for dotted, spec in self.params.items():
            if isinstance(spec, FloatRange):
                trial.suggest_float(dotted, spec.low, spec.high, log=spec.log)
            elif isinstance(spec, Choices):
                trial.suggest_categorical(dotted, spec.choices)


def define_space(search: SearchConfig) -> DefineByRunSpace:
    return DefineByRunSpace(search)


def each_arch_first(search: SearchConfig) -> list[dict[str, Any]]:
    """One enqueued trial per architecture (Optuna enqueue_trial; the rest of each is sampled), so a
    short search tries every architecture once before TPE chooses: a 6-trial demo search once never
    sampled Unet, the best architecture there."""
    return [{ARCH: arch} for arch in list(search.archs)[: search.num_samples]]


def trial_overrides(trial_config: dict[str, Any]) -> dict[str, Any]:
    """Sampled trial parameters -> dotted config overrides (``model.arch``, ``train.lr``, ...)."""
    arch = trial_config[ARCH]
    overrides = {"model.arch": arch, "model.encoder": trial_config[encoder_param(arch)]}
    overrides.update({k: v for k, v in trial_config.items() if "." in k})
    return overrides
