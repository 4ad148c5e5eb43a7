"""Faces in photos: detectors (detect: a registry; mtcnn: the MTCNN port), alignment to the training
framing (align), the whole-photo fallback (whole_photo), the context view and per-pixel face ownership
when pasting back (paste), and the photo parser that runs them in order (photo_parser)."""
