"""MTCNN (Zhang et al. 2016): a three-stage CNN face detector with five landmarks, ported to torch.

The weights are facenet-pytorch's P/R/O-Net files (MIT), converted to one safetensors file by
`make weights` (scripts/fetch_mtcnn.py: pip download of the wheel, sha256 checked); nothing downloads at
run time. The file is $FACEPARSE_MTCNN, else ~/.cache/faceparse/mtcnn/mtcnn.safetensors.

    P-Net   a 12 px window slid over an image pyramid (factor `factor`, smallest face `min_face` px)
    R-Net   each candidate re-scored and its box regressed at 24 px
    O-Net   the same at 48 px, plus five landmarks: the eyes (image left first), nose, mouth corners

Boxes come back in continuous photo coordinates; the landmarks are named as in data_prep.framing
(r_eye is on the image's left; mouth = the mean of the two corners).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from configs.errors import FaceParseError
from ensemble.postprocess.face_regions import Face

WEIGHTS_ENV = "FACEPARSE_MTCNN"
DEFAULT_WEIGHTS = Path.home() / ".cache" / "faceparse" / "mtcnn" / "mtcnn.safetensors"
# The stages' score thresholds; facenet-pytorch's defaults are (0.6, 0.7, 0.7). The last one is the
# detector threshold `ensemble fit --wild` chooses (recipe.wild.detector_threshold).
THRESHOLDS = (0.6, 0.7, 0.7)


class MtcnnError(FaceParseError):
    """MTCNN's weights are missing or do not match the network."""


def weights_path() -> Path:
    """Where the converted weights are: $FACEPARSE_MTCNN, else the user cache."""
    return Path(os.environ.get(WEIGHTS_ENV) or DEFAULT_WEIGHTS)


def weights_available() -> bool:
    return weights_path().is_file()


class PNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = nn.functional.max_pool2d(self.prelu1(self.conv1(x)), 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), self.conv4_1(x).softmax(1)[:, 1]


def _flatten_caffe(x: torch.Tensor) -> torch.Tensor:
    # The weights come from Caffe, whose dense layers read (W, H, C) order.
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class RNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pool = nn.functional.max_pool2d
        x = pool(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = pool(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu4(self.dense4(_flatten_caffe(self.prelu3(self.conv3(x)))))
        return self.dense5_2(x), self.dense5_1(x).softmax(1)[:, 1]


class ONet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pool = nn.functional.max_pool2d
        x = pool(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = pool(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = pool(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu5(self.dense5(_flatten_caffe(self.prelu4(self.conv4(x)))))
        return self.dense6_2(x), self.dense6_3(x), self.dense6_1(x).softmax(1)[:, 1]


def load_nets(path: Path | None = None) -> tuple[PNet, RNet, ONet]:
    """The three nets with the weights of the safetensors file (keys pnet.*, rnet.*, onet.*)."""
    from safetensors.torch import load_file

    path = Path(path or weights_path())
    if not path.is_file():
        raise MtcnnError(
            f"MTCNN weights not found at {path}: run `make weights` (python scripts/fetch_mtcnn.py) once, "
            f"set ${WEIGHTS_ENV}, or use --detector dlib|parser"
        )
    tensors = load_file(str(path))
    nets = (PNet(), RNet(), ONet())
    for name, net in zip(("pnet", "rnet", "onet"), nets):
        state = {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            raise MtcnnError(f"{path}: {name} weights do not fit the network ({err})") from None
        net.eval()
    return nets


def nms(boxes: np.ndarray, scores: np.ndarray, overlap: float, by_min: bool = False) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (IoU, or intersection over the smaller box)."""
    order, keep = np.argsort(-scores), []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.clip(
            np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None
        )
        h = np.clip(
            np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None
        )
        inter = w * h
        union = np.minimum(area[i], area[rest]) if by_min else area[i] + area[rest] - inter
        order = rest[inter / np.maximum(union, 1e-9) <= overlap]
    return np.array(keep, np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] += (w - side) / 2
    out[:, 1] += (h - side) / 2
    out[:, 2:4] = out[:, :2] + side[:, None]
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    out = boxes.copy()
    wh = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, 1)
    out[:, :4] += reg * wh
    return out


def _patches(image: np.ndarray, boxes: np.ndarray, size: int) -> torch.Tensor:
    """(N, 3, size, size) normalised crops of the boxes; outside the photo is zero (as MTCNN trained)."""
    h, w = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for k, (x0, y0, x1, y1) in enumerate(np.round(boxes[:, :4]).astype(int)):
        if x1 <= x0 or y1 <= y0:
            continue
        patch = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if sx1 > sx0 and sy1 > sy0:
            patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy((out - 127.5) / 128.0).permute(0, 3, 1, 2)


def equalized(image: np.ndarray) -> np.ndarray:
    """The RGB photo with its lightness equalised locally (CLAHE)."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    lab[..., 0] = cv2.createCLAHE(2.0, (8, 8)).apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


_LIFT = np.round(255 * (np.arange(256) / 255) ** 0.5).astype(np.uint8)


def lifted(image: np.ndarray) -> np.ndarray:
    """The RGB photo with its shadows lifted (gamma 0.5 on every channel): dark faces get contrast."""
    return cv2.LUT(image, _LIFT)


class MtcnnDetector:
    """Faces with five landmarks: (score, box, landmarks) per face above `threshold` (O-Net's score).

    The Face box is MTCNN's own (regressed) box; the crop is aligned on the landmarks. A box mapped back
    from the training framing through the landmarks was tried and fits visible faces worse: on 60
    generated wild scenes (62 faces) mean IoU with the true face-core box 0.72 against 0.78 for MTCNN's
    box, 48 against 50 faces at IoU >= 0.5 (a turned, cut or occluded face is not the median face).
    """

    name = "mtcnn"

    def __init__(
        self,
        threshold: float = THRESHOLDS[2],
        min_face: float = 20.0,
        factor: float = 0.709,
        path: Path | None = None,
        early: tuple[float, float] = THRESHOLDS[:2],
        equalize: bool = True,
        lift: bool = True,
    ):
        self.pnet, self.rnet, self.onet = load_nets(path)
        self.threshold, self.min_face, self.factor = threshold, min_face, factor
        self.early = early  # P-Net's and R-Net's thresholds
        # Also detect on a contrast-equalised copy (CLAHE on lightness) and merge: dark, low-contrast
        # faces. On 60 generated wild scenes (62 faces, threshold 0.5) 41 -> 48 found, 2 -> 5 false.
        self.equalize = equalize
        # And on a gamma-lifted copy (shadows raised): 60 wild scenes, 62 faces: 47 -> 48 found, 4 false.
        self.lift = lift

    @torch.inference_mode()
    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 5) boxes x0, y0, x1, y1, score and (N, 5, 2) landmarks of an RGB uint8 photo."""
        h, w = image.shape[:2]
        boxes = self._stage1(image, h, w)
        if len(boxes):
            reg, score = self.rnet(_patches(image, boxes, 24))
            keep = score.numpy() > self.early[1]
            boxes, reg = np.hstack([boxes[keep, :4], score.numpy()[keep, None]]), reg.numpy()[keep]
            pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
            boxes = _square(_regress(boxes[pick], reg[pick]))
        points = np.zeros((0, 5, 2))
        if len(boxes):
            reg, marks, score = self.onet(_patches(image, boxes, 48))
            keep = score.numpy() > self.threshold
            boxes = np.hstack([boxes[keep, :4], score.numpy()[keep, None]])
            marks = marks.numpy()[keep]
            side = (boxes[:, 2:4] - boxes[:, :2])[:, None, :]
            points = np.stack([marks[:, :5], marks[:, 5:]], -1) * side + boxes[:, None, :2]
            boxes = _regress(boxes, reg.numpy()[keep])
            keep = nms(boxes[:, :4], boxes[:, 4], 0.7, by_min=True)
            boxes, points = boxes[keep], points[keep]
        return boxes, points

    def _stage1(self, image: np.ndarray, h: int, w: int) -> np.ndarray:
        scale, found = 12.0 / self.min_face, []
        while min(h, w) * scale >= 12:
            small = cv2.resize(image, (int(w * scale + 1), int(h * scale + 1)), interpolation=cv2.INTER_AREA)
            x = torch.from_numpy((small.astype(np.float32) - 127.5) / 128.0).permute(2, 0, 1)[None]
            reg, prob = self.pnet(x)
            prob, reg = prob[0].numpy(), reg[0].numpy()
            ys, xs = np.nonzero(prob >= self.early[0])
            if ys.size:
                cells = np.stack([xs, ys], 1).astype(np.float64)
                q0, q1 = np.floor((2 * cells + 1) / scale), np.floor((2 * cells + 12) / scale)
                boxes = np.hstack([q0, q1, prob[ys, xs, None], reg[:, ys, xs].T])
                found.append(boxes[nms(boxes[:, :4], boxes[:, 4], 0.5)])
            scale *= self.factor
        if not found:
            return np.zeros((0, 5))
        boxes = np.vstack(found)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        regressed = _regress(boxes[:, :4], boxes[:, 5:9])
        return _square(np.hstack([regressed, boxes[:, 4:5]]))

    def __call__(self, image: np.ndarray) -> list[Face]:
        image = np.ascontiguousarray(image)
        boxes, points = self.detect(image)
        copies = [f for f, on in ((equalized, self.equalize), (lifted, self.lift)) if on]
        for copy in copies:
            more, more_points = self.detect(copy(image))
            boxes, points = np.vstack([boxes, more]), np.concatenate([points, more_points])
        if copies:
            keep = nms(boxes[:, :4], boxes[:, 4], 0.4)
            boxes, points = boxes[keep], points[keep]
        faces = []
        for (x0, y0, x1, y1, score), p in zip(boxes, points):
            marks = {
                "r_eye": tuple(p[0].tolist()),
                "l_eye": tuple(p[1].tolist()),
                "nose": tuple(p[2].tolist()),
                "mouth": tuple(((p[3] + p[4]) / 2).tolist()),
            }
            box = (float(x0), float(y0), float(x1), float(y1))
            faces.append(Face(box, float(score), marks, found_by="mtcnn"))
        return faces
