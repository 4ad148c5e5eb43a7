"""Fetch MTCNN's weights once (make weights): facenet-pytorch's P/R/O-Net files -> one safetensors file.

    python scripts/fetch_mtcnn.py [--out PATH]   (default $FACEPARSE_MTCNN, else
                                                  ~/.cache/faceparse/mtcnn/mtcnn.safetensors)

`pip download facenet-pytorch==2.6.0 --no-deps` (the MIT wheel; the package itself is not installed: it
pins torch<2.3), the three .pt files taken out of it and checked against the sha256 recorded here, then
converted (torch.load(weights_only=True) -> safetensors, keys pnet.*, rnet.*, onet.*). The run-time code
(ensemble/faces/mtcnn.py) reads only the safetensors file and never downloads anything.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "facenet-pytorch==2.6.0"
SHA256 = {
    "pnet": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from ensemble.faces.mtcnn import load_nets, weights_path

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=None, help="safetensors file to write")
    p.add_argument("--force", action="store_true", help="fetch again even when the file is there")
    args = p.parse_args()
    out = args.out or weights_path()
    if out.is_file() and not args.force:
        load_nets(out)  # a file that loads is kept
        print(f"MTCNN weights already at {out}")
        return 0
    import torch
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-q", "-d", tmp]
        subprocess.run(cmd, check=True)
        wheel = next(Path(tmp).glob("facenet_pytorch-*.whl"))
        tensors = {}
        with zipfile.ZipFile(wheel) as z:
            for name, digest in SHA256.items():
                data = z.read(f"facenet_pytorch/data/{name}.pt")
                if hashlib.sha256(data).hexdigest() != digest:
                    print(f"error: {name}.pt in {wheel.name} has an unexpected sha256", file=sys.stderr)
                    return 2
                state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
                tensors.update({f"{name}.{k}": v.contiguous() for k, v in state.items()})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".tmp")
    save_file(tensors, str(tmp_out), metadata={"source": WHEEL, "license": "MIT (facenet-pytorch)"})
    load_nets(tmp_out)  # the file fits the port before it takes the final name
    tmp_out.replace(out)
    print(f"MTCNN weights ({len(tensors)} tensors) -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
