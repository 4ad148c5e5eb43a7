"""Write files atomically: a temp file in the same folder, then rename (never half-written)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; outputs get what open() would give them (0666 less the umask).
FILE_MODE = 0o666 & ~_read_umask()


class AtomicFile:
    """A temp file beside path, renamed onto path by close(); abort() or an error in a with-block
    removes it, so path is either absent, the old file, or complete. Streams large outputs."""

    def __init__(self, path: str | Path, mode: str = "wb", **open_kwargs: Any):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        os.fchmod(fd, FILE_MODE)
        self.file = os.fdopen(fd, mode, **open_kwargs)

    def write(self, data: Any) -> None:
        self.file.write(data)

    def close(self) -> None:
        self.file.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.file.close()
        Path(self.tmp).unlink(missing_ok=True)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_bytes(path: str | Path, data: bytes) -> None:
    with AtomicFile(path, "wb") as f:
        f.write(data)


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
