"""Model factory, training loop, metrics, Ray Tune + Optuna search, top-k export."""
