"""Raw datasets -> prepared datasets; torch Dataset and augmentations; synthetic faces."""
