"""One typed, validated config schema for every section a run needs, loaded from YAML."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from configs.classes import DEFAULT_PAINT_ORDER, validate_paint_order
from configs.errors import ConfigError  # defined there (configs.classes raises it too); imported from here


class Section(BaseModel):
    # Unknown keys are errors: a typo must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


Prob = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]
Triple = tuple[float, float, float]


class DatasetRef(Section):
    path: Path
    weight: Positive = 1.0


class AugmentConfig(Section):
    hflip: Prob = 0.5  # L/R-swapping flip (data_prep.transforms.HorizontalFlipSwapLR)
    affine: Prob = 0.7
    shift: Annotated[float, Field(ge=0, le=0.5)] = 0.08
    scale: Annotated[float, Field(ge=0, le=0.9)] = 0.15
    rotate: Annotated[float, Field(ge=0, le=180)] = 20.0
    color: Prob = 0.5
    brightness: Annotated[float, Field(ge=0, le=1)] = 0.2
    contrast: Annotated[float, Field(ge=0, le=1)] = 0.2
    saturation: Annotated[float, Field(ge=0, le=1)] = 0.2
    hue: Annotated[float, Field(ge=0, le=0.5)] = 0.02
    blur: Prob = 0.1
    noise: Prob = 0.1
    # Copy-paste occlusion (data_prep.occlusion): hands, mics, cups, hair strands, other faces' patches.
    occlusion: Prob = 0.0
    max_occluders: Annotated[int, Field(ge=1, le=8)] = 2
    # Zoom out (face smaller in the frame, the border labelled background) or in (face cropped).
    zoom: Prob = 0.0
    zoom_range: tuple[Positive, Positive] = (0.5, 1.3)

    @field_validator("zoom_range")
    @classmethod
    def _zoom_ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not v[0] <= 1.0 <= v[1]:
            raise ValueError(f"must be [low, high] with low <= 1 <= high (1 = no zoom), got {list(v)}")
        return v


class DataConfig(Section):
    datasets: list[DatasetRef] = []  # may be given on the command line (--data) instead
    image_size: Annotated[int, Field(ge=32, le=2048)] = 512
    mean: Triple = (0.485, 0.456, 0.406)
    std: tuple[Positive, Positive, Positive] = (0.229, 0.224, 0.225)
    augment: AugmentConfig = AugmentConfig()
    num_workers: Annotated[int, Field(ge=0)] | None = None  # None: from the trial's CPUs
    paint_order: tuple[str, ...] = DEFAULT_PAINT_ORDER

    @field_validator("image_size")
    @classmethod
    def _multiple_of_32(cls, v: int) -> int:
        if v % 32:
            raise ValueError(f"must be a multiple of 32 (encoders downsample 32x), got {v}")
        return v

    @field_validator("paint_order")
    @classmethod
    def _paint_order(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return validate_paint_order(v)


class ModelConfig(Section):
    arch: str = "Unet"
    encoder: str = "resnet18"
    encoder_weights: Literal["imagenet"] | str | None = None
    weights_cache: Path | None = None  # torch hub / HF cache dir shared by all nodes


class TrainConfig(Section):
    epochs: Annotated[int, Field(ge=1)] = 20
    batch_size: Annotated[int, Field(ge=1)] = 8
    lr: Positive = 3e-4
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4
    schedule: Literal["cosine", "onecycle"] = "cosine"
    warmup_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.05
    min_lr_ratio: Annotated[float, Field(ge=0, le=1)] = 0.01
    ce_weight: Annotated[float, Field(ge=0)] = 1.0
    dice_weight: Annotated[float, Field(ge=0)] = 1.0
    class_weights: bool = False  # from dataset.json pixel frequencies
    amp: Literal["bf16", "fp16", "none"] = "bf16"  # CUDA only; CPU runs in float32
    # CUDA only. auto: contiguous for depthwise-conv encoders (EfficientNet, MobileNet, MiT: channels_last
    # stalled UNet++/efficientnet-b3 on an H100), channels_last for the rest (tuning.speed).
    channels_last: bool | Literal["auto"] = "auto"
    compile: bool = False  # torch.compile the model; compile time shows in first_step_s / first_epoch_s
    grad_clip: Annotated[float, Field(ge=0)] = 1.0  # 0 disables
    max_train_batches: Annotated[int, Field(ge=1)] | None = None  # cap per epoch (smoke tests)
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @field_validator("channels_last", mode="before")
    @classmethod
    def _bool_or_auto(cls, v: Any) -> Any:
        if isinstance(v, bool) or v == "auto":
            return v
        raise ValueError(f"expected true, false or auto, got {v!r}")

    @model_validator(mode="after")
    def _some_loss(self) -> TrainConfig:
        if self.ce_weight == 0 and self.dice_weight == 0:
            raise ValueError("ce_weight and dice_weight are both 0: no loss to train on")
        return self


class FloatRange(Section):
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class Choices(Section):
    choices: list[Any] = Field(min_length=1)


def _param_kind(v: Any) -> str:
    return "choices" if isinstance(v, dict) and "choices" in v or isinstance(v, Choices) else "range"


# A search dimension: {low, high, log} or {choices: [...]}; tagged so errors name one shape.
SearchParam = Annotated[
    Annotated[FloatRange, Tag("range")] | Annotated[Choices, Tag("choices")],
    Discriminator(_param_kind),
]


class AshaConfig(Section):
    grace_period: Annotated[int, Field(ge=1)] = 1
    reduction_factor: Annotated[float, Field(gt=1)] = 3.0


class SearchConfig(Section):
    # Architecture -> the encoders to try with it (define-by-run: encoder depends on arch).
    archs: dict[str, list[str]] = {"Unet": ["resnet18"]}
    # Further dimensions: dotted path into this schema -> range or choices.
    params: dict[str, SearchParam] = {}
    num_samples: Annotated[int, Field(ge=1)] = 8
    max_concurrent: Annotated[int, Field(ge=1)] = 4
    seed: int = 0
    metric: Literal["val_f1"] = "val_f1"
    asha: AshaConfig = AshaConfig()
    num_to_keep: Annotated[int, Field(ge=1)] = 2  # checkpoints kept per trial
    max_failures: Annotated[int, Field(ge=0)] = 1
    top_k: Annotated[int, Field(ge=1)] = 3
    # Trials exported to the manifest as the candidate library `ensemble fit` selects from
    # (None: 2 x top_k), best first; max_per_arch caps each architecture's share.
    candidates: Annotated[int, Field(ge=1)] | None = None
    max_per_arch: Annotated[int, Field(ge=1)] | None = None
    # Where the Optuna study is kept (tuning.study): "auto" = sqlite at STORAGE/NAME/optuna.db
    # (local storage only), an SQLAlchemy URL or a sqlite file path, or null for in-memory.
    optuna_storage: str | None = "auto"
    # Ray Tune's own MLflow / W&B logger callbacks (tuning.search_loggers), off by default.
    loggers: list[Literal["mlflow", "wandb"]] = []

    @property
    def library_size(self) -> int:
        return self.candidates or 2 * self.top_k

    @field_validator("archs")
    @classmethod
    def _archs(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        if not v:
            raise ValueError("needs at least one architecture")
        for arch, encoders in v.items():
            if not encoders:
                raise ValueError(f"architecture {arch!r} lists no encoders")
        return v


class ResourcesConfig(Section):
    cpu: Annotated[float, Field(gt=0)] = 1.0  # per trial
    gpu: Annotated[float, Field(ge=0)] = 0.0  # per trial; fractions share a card
    address: str | None = (
        None  # Ray cluster to join unless --address or RAY_ADDRESS names one; None: a fresh local Ray
    )
    storage: str = "runs/ray"  # local path or URI every node can reach
    dashboard_host: str = "127.0.0.1"
    dashboard_port: Annotated[int, Field(ge=1, le=65535)] = 8265
    include_dashboard: bool = True


class PostprocessConfig(Section):
    """Which post-processing steps run, and their settings. Each field belongs to one step
    (ensemble/postprocess/); a step added there may read keys of its own, which are kept here as
    extra keys and checked against the steps when they are built (an unknown key fails there)."""

    model_config = ConfigDict(extra="allow")

    smooth: Literal["none", "gaussian"] = "gaussian"
    sigma: Annotated[float, Field(ge=0)] = 1.0  # pixels at the output resolution
    remove_small: bool = True
    min_component_fraction: Annotated[float, Field(ge=0, le=1)] = 0.2
    fill_holes: bool = True
    grabcut: bool = False
    crf: bool = False
    # Detection-based steps (ensemble.postprocess.face_steps); factors: parts, hair, skin (the seed's).
    face_clip: bool = False
    face_clip_scales: tuple[Positive, Positive, Positive] = (0.9, 1.3, 1.1)
    glasses_to_skin: bool = False
    eye_repair: bool = False
    clothes_below: bool = False  # clothes grown down the photo below each face (ensemble.postprocess)


class CsvConfig(Section):
    """Leaderboard CSV conventions (DESIGN.md); the defaults follow the seed's submission code."""

    resize: Literal["nearest", "nearest_exact"] = "nearest"  # OpenCV INTER_NEAREST(_EXACT) to 256
    background: Literal["rle", "zero"] = "rle"  # background row: its run-length code, or "0"


class EnsembleConfig(Section):
    tta: Literal["none", "flip", "flip+scale"] = "flip"
    scales: list[Positive] = [0.75, 1.0, 1.25]
    member_weights: Literal["uniform", "score"] = "uniform"  # without a recipe (ensemble fit)
    batch_size: Annotated[int, Field(ge=1)] = 4
    num_workers: Annotated[int, Field(ge=0)] = 2
    viz: Annotated[int, Field(ge=0)] = 60
    # Larger images are shrunk (aspect kept) for prediction and their masks scaled back: the
    # averaged probabilities at full size would take 19 x 4 bytes per pixel (5 GB at 8000x8000).
    max_pixels: Annotated[int, Field(ge=32 * 32)] = 4096 * 4096
    postprocess: PostprocessConfig = PostprocessConfig()
    csv: CsvConfig = CsvConfig()


class DistillConfig(Section):
    """`python -m ensemble distill`: one student trained on the fitted ensemble's probabilities."""

    arch: str = "FPN"  # the student: any smp architecture/encoder pair (tuning.models)
    encoder: str = "mobilenet_v2"
    temperature: Positive = 2.0  # softens teacher and student alike; the KD term is scaled by T^2
    kd_weight: Annotated[float, Field(ge=0)] = 1.0  # KL(teacher || student) at the temperature
    ce_weight: Annotated[float, Field(ge=0)] = 0.5  # cross-entropy on ground truth, where labelled
    epochs: Annotated[int, Field(ge=1)] | None = None  # None: train.epochs
    # Teacher probabilities are cached once at resolution x resolution in half precision when
    # they fit cache_gb (ensemble.distill.teacher states the formula), else computed on the fly.
    resolution: Annotated[int, Field(ge=8)] = 128
    cache_gb: Annotated[float, Field(ge=0)] = 8.0

    @model_validator(mode="after")
    def _some_loss(self) -> DistillConfig:
        if self.kd_weight == 0 and self.ce_weight == 0:
            raise ValueError("kd_weight and ce_weight are both 0: no loss to train on")
        return self


class RunConfig(Section):
    seed: int = 0
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    search: SearchConfig = SearchConfig()
    resources: ResourcesConfig = ResourcesConfig()
    ensemble: EnsembleConfig = EnsembleConfig()
    distill: DistillConfig = DistillConfig()

    @model_validator(mode="after")
    def _search_params_exist(self) -> RunConfig:
        for dotted, spec in self.search.params.items():
            try:
                _check_path(self, dotted)
            except ConfigError:
                raise ValueError(
                    f"search.params.{dotted}: not a config key (expected e.g. train.lr)"
                ) from None
            # Every value the search can sample must be one the field accepts (a train.lr range
            # reaching below 0 would otherwise fail inside half the trials, after Ray starts).
            values = spec.choices if isinstance(spec, Choices) else [spec.low, spec.high]
            for value in values:
                problem = _field_rejects(self, dotted, value)
                if problem:
                    raise ValueError(f"search.params.{dotted}: {value!r} is not a valid {dotted}: {problem}")
        return self

    def with_overrides(self, overrides: dict[str, Any], source: str = "overrides") -> RunConfig:
        """A copy with dotted-path overrides applied (``{"train.lr": 1e-3}``), re-validated."""
        raw = self.model_dump(mode="json")
        for dotted, value in overrides.items():
            try:
                _check_path(self, dotted)
            except ConfigError as err:
                raise ConfigError(f"{source}: {err}") from None
            node = raw
            *parents, leaf = dotted.split(".")
            for key in parents:
                node = node[key]
            node[leaf] = value
        return parse_config(raw, source=source)


def _check_path(cfg: BaseModel, dotted: str) -> None:
    node: Any = cfg
    *parents, leaf = dotted.split(".")
    for key in parents:
        if not isinstance(node, BaseModel) or key not in type(node).model_fields:
            raise ConfigError(f"{dotted}: no such config key")
        node = getattr(node, key)
    # A section that keeps extra keys (PostprocessConfig) takes any leaf; its owner checks it.
    if not isinstance(node, BaseModel) or (
        leaf not in type(node).model_fields and node.model_config.get("extra") != "allow"
    ):
        raise ConfigError(f"{dotted}: no such config key")


def error_message(e: dict) -> str:
    """One pydantic error as a short phrase: 'missing key', 'unknown key', or the reason (got x)."""
    if e["type"] == "missing":
        return "missing key"
    if e["type"] == "extra_forbidden":
        return "unknown key"
    if e["type"] == "value_error":
        return str(e["ctx"]["error"]) if "ctx" in e else e["msg"]
    msg = e["msg"]
    if "input" in e and not isinstance(e["input"], (dict, list)):
        msg += f" (got {e['input']!r})"
    return msg


def _field_rejects(cfg: RunConfig, dotted: str, value: Any) -> str | None:
    """Why the field at dotted would reject value (its type, bounds and validators), else None."""
    *parents, leaf = dotted.split(".")
    if not parents:
        return None  # top-level scalars (seed): re-validating RunConfig here would recurse
    node: Any = cfg
    for key in parents:
        node = getattr(node, key)
    try:
        setattr(node.model_copy(), leaf, value)  # validate_assignment runs the field's checks
    except ValidationError as err:
        e = err.errors()[0]
        return str(e["ctx"]["error"]) if e["type"] == "value_error" and "ctx" in e else e["msg"]
    return None


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        # drop union tags and validator names pydantic puts in the location
        key = ".".join(
            str(p)
            for p in e["loc"]
            if str(p) not in ("range", "choices") and not str(p).startswith("function-")
        )
        msg = e["msg"] if e["type"] == "missing" else error_message(e)
        lines.append(f"{source}: {key}: {msg}" if key else f"{source}: {msg}")
    return "\n".join(lines)


def parse_config(raw: dict[str, Any] | None, source: str = "config") -> RunConfig:
    """Validate a plain dict; raises ConfigError with one line per bad key."""
    try:
        return RunConfig.model_validate(raw or {})
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def load_config(path: str | Path) -> RunConfig:
    """Load and validate a YAML config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}".splitlines()[0]) from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return parse_config(copy.deepcopy(raw), source=str(path))
