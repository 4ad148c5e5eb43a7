"""Write files atomically: a temp file in the same folder, then rename (never half-written)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np


def write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")


def encode_image(image: np.ndarray, ext: str, jpeg_quality: int = 95) -> bytes:
    """Encode an RGB (H, W, 3) or label (H, W) uint8 array; ext is '.jpg' or '.png'."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {image.shape} image as {ext}")
    return buf.tobytes()


def write_image(path: str | Path, image: np.ndarray, jpeg_quality: int = 95) -> None:
    """Atomically write an RGB image or a uint8 label map (format from the suffix)."""
    path = Path(path)
    write_bytes(path, encode_image(image, path.suffix.lower(), jpeg_quality))
