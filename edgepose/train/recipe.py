"""Typed training recipes: flat YAML -> frozen dataclasses, unknown keys rejected, dotted --set overrides."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import ConfigError
from ..typed import from_mapping


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "mobilenetv3_small"
    width: float = 1.0
    head: str = "rot6d"
    input_size: int = 112
    landmarks: int = 0  # 0, 5 or 68: an auxiliary landmark branch trained with the pose (not exported)
    attention: bool = False  # a spatial-attention block on the last feature map


@dataclass(frozen=True)
class DataConfig:
    root: str = ""  # the training pool folder (index.csv); required: recipes name it, or --set data.root=PATH
    holdout: float = 0.03
    crop_scale: float = 1.6
    mp_max_fit: float = 0.6
    limit: int = 0  # use only the first N rows (smoke runs); 0 = all
    profiled: str = ""  # folder made by `edgepose profile`: synthetic large-yaw views added to the training rows
    profiled_extra: tuple = ()  # more such folders (e.g. renders with other --seed values), added alike
    labels: str = ""  # CSV made by `edgepose label`: replaces the fused labels; pool rows it drops are not used
    labels_min_confidence: float = 0.0  # with labels: also drop rows below this confidence
    profiled_relabel: bool = False  # with labels and profiled: a view's label = its source face's label in the labels
    # file composed with the view's turn (views and pool rows agree on the source pose); False = as rendered
    profiled_fit_model: str = ""  # 3D face model folder: a view's label = that model fitted to its source's 68 points
    # (the pose 300W-LP would give it) composed with the view's turn; instead of profiled_relabel
    pool_max_abs_yaw: float = 0.0  # leave out pool (real) rows whose label |yaw| exceeds this, so larger yaw is taught
    # only by the profiled views' exact turns (their sources still relabel them); 0 = keep every row


@dataclass(frozen=True)
class AugmentConfig:
    flip: float = 0.5
    rotate_deg: float = 15.0
    scale_jitter: float = 0.12
    shift_jitter: float = 0.06
    color_jitter: float = 0.25
    grayscale: float = 0.1
    lowres: float = 0.15
    blur: float = 0.0  # probability of a Gaussian blur (sigma 0.5-1.5 px)
    occlusion: float = 0.0  # probability of random erasing: a box of 5-25 % of the crop filled with noise
    protocol_box: float = 0.0  # share of crops reframed on the box of their visible AFLW-21 points (the published
    # AFLW2000 protocol's box: ears in, jaw line out) instead of the 68-point box; see train/protocol_box.py
    protocol_box_model: str = ""  # with protocol_box: the 3D face model with ears (a 3DDFA BFM folder) that predicts it


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 0.3
    ema_decay: float = 0.998
    seed: int = 0
    threads: int = 0  # 0 = all cores
    max_steps_per_epoch: int = 0  # 0 = whole epoch (smoke runs set a few)
    accumulate: int = 1  # gradient accumulation: optimizer step every N batches
    label_noise_deg: float = 0.0  # label smoothing: Gaussian noise on the target angles (sigma, degrees)
    curriculum: tuple = ()  # [[start_epoch, max_abs_deg], ...]: e.g. [[0, 30], [2, 60], [4, 99]] (small angles first)
    large_yaw_repeat: int = 1  # large-angle emphasis: rows whose label |yaw| >= large_yaw_deg are seen this many
    # times per epoch (1 = off)
    large_yaw_deg: float = 60.0
    patience: int = 0  # early stopping on the pool-holdout MAE (never the dev set); 0 = off
    min_delta: float = 0.0  # degrees the holdout MAE must improve by to count as an improvement
    keep_epochs: bool = False  # also keep every epoch's checkpoint as epoch_<N>.pt (for `edgepose average`)
    checkpoint_every: int = 0  # also checkpoint every N steps inside an epoch (exact mid-epoch resume); 0 = epochs only
    landmark_weight: float = 0.3  # with model.landmarks: loss = (1 - w) * pose + w * landmarks (0.7 / 0.3)
    tensorboard: bool = False  # also write TensorBoard scalars to <out>/tensorboard (needs the tensorboard package)
    init: str = ""  # warm start: load the (EMA) weights of this checkpoint before training; '' = from scratch
    euler_weight: float = 0.0  # rot6d head: + w * L1 of the decoded yaw/pitch/roll (radians) beside the geodesic loss
    select_by: str = "holdout"  # best.pt / early stopping by: holdout (all), holdout_views (the profiled views' exact
    # labels; for self-training, where the pool labels come from the model itself), holdout_pool


@dataclass(frozen=True)
class DistillConfig:
    """Knowledge distillation from a teacher checkpoint ('' = off). Loss = hard_weight * label loss
    + pose_weight * geodesic(student, teacher pose) [cached] + feature_weight * MSE(adapter(student map), teacher map)
    + kl_weight * T^2 * KL(bins, temperature T) [both online]."""

    teacher: str = ""
    hard_weight: float = 1.0
    pose_weight: float = 1.0
    feature_weight: float = 0.0
    kl_weight: float = 0.0
    temperature: float = 2.0


@dataclass(frozen=True)
class QATConfig:
    """Quantization-aware training with NNCF ('' = off): start from the fp32 checkpoint `init`, insert int8 fake
    quantizers calibrated on `calibration_size` pool crops, then fine-tune with this recipe's train section."""

    init: str = ""
    calibration_size: int = 300
    preset: str = "performance"  # NNCF preset: performance (symmetric) or mixed (asymmetric activations)


@dataclass(frozen=True)
class EvalConfig:
    aflw2000_root: str = ""  # AFLW2000 folder scored each epoch (reporting only); empty = none


@dataclass(frozen=True)
class Recipe:
    """A whole training run. Units: degrees, pixels, epochs."""

    name: str = "student"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    qat: QATConfig = field(default_factory=QATConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def _apply_override(data: dict, assignment: str) -> None:
    if "=" not in assignment:
        raise ConfigError(f"override '{assignment}' must look like section.key=value (e.g. train.epochs=3)")
    dotted, raw = assignment.split("=", 1)
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    """Read a recipe YAML and apply `section.key=value` overrides.

    Raises:
        ConfigError: missing file, bad YAML, unknown keys (with a suggestion) or wrongly typed values.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe '{path}' does not exist; recipes live in recipes/*.yaml (research/ holds the default model's ladder)")
    return recipe_from_yaml(path.read_text(), overrides, where=f"recipe '{path}'")


def recipe_from_yaml(text: str, overrides: list[str] = (), where: str = "recipe") -> Recipe:
    """Build a Recipe from YAML text (e.g. the copy saved inside a checkpoint)."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}") from None
    for assignment in overrides:
        _apply_override(data, assignment)
    return from_mapping(Recipe, data, "", ConfigError)


def recipe_to_yaml(recipe: Recipe) -> str:
    return yaml.safe_dump(dataclasses.asdict(recipe), sort_keys=False)
