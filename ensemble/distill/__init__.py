"""python -m ensemble distill: one fast student trained on a fitted ensemble's probabilities."""
