"""Post-processing of the averaged probabilities and label maps: a registry of steps (one class per
step, each declaring its kind, its config fields and the parameter grid `ensemble fit` tries; the
contract is in ensemble.postprocess.steps_base, the registry in ensemble.postprocess.registry).

Every module of this package is imported here, so a step registers itself by being in a file here.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
