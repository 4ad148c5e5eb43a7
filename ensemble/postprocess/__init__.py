"""Post-processing of the averaged probabilities and label maps: a registry of steps (one class per
step, each declaring its kind, its config switch and the parameter grid `ensemble fit` tries)."""
