"""Faces in photos: detectors, alignment to the training framing, the photo parser that detects,
aligns, parses and pastes back."""
