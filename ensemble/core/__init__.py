"""The Ensemble and what it is made of: members loaded from a manifest, input discovery and
checks, test-time views, member weights, the recipe, batched prediction. Imports nothing of the
other ensemble subpackages: everything else is built on it."""
