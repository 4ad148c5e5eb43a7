"""python -m ensemble fit: choose members, weights, views and post-processing on held-out
predictions (cached candidate probabilities, Caruana selection, confirm on a second half); with
--wild, the photo path's options on wild scenes (wild_fit)."""
