"""Typed training recipes: flat YAML -> frozen dataclasses, unknown keys rejected, dotted --set overrides."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import ConfigError
from ..typed import Range, above, at_least, between, check_ranges, from_mapping, one_of, read_utf8

PROBABILITY = between(0.0, 1.0)

# train.select_by -> the logged metric that picks best.pt and drives early stopping (lower is better)
SELECT_BY = {"holdout": "holdout_mae", "holdout_views": "holdout_views_mae", "holdout_pool": "holdout_pool_mae"}
# data.crop_protocol: the manifest crop protocols training can cut from the pool (train/pool_data.augment_batch)
TRAINING_CROPS = ("square", "roi")
# qat.preset -> NNCF's QuantizationPreset of the same name: performance (symmetric), mixed (asymmetric activations)
QAT_PRESETS = ("performance", "mixed")


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "mobilenetv3_small"
    width: float = field(default=1.0, metadata=above(0.0))
    head: str = "rot6d"
    input_size: int = field(default=112, metadata=between(16, 1024, whole=True))
    # 0, 5 or 68: an auxiliary landmark branch trained with the pose (not exported)
    landmarks: int = field(default=0, metadata=between(0, 68, whole=True))
    attention: bool = False  # a spatial-attention block on the last feature map


@dataclass(frozen=True)
class DataConfig:
    root: str = ""  # the training pool folder (index.csv); required: recipes name it, or --set data.root=PATH
    holdout: float = field(default=0.03, metadata=between(0.0, 1.0, lo_open=True, hi_open=True))
    crop_scale: float = field(default=1.6, metadata=between(0.5, 10.0))  # as the manifest's crop.scale
    # the crop the model is trained and run with (the manifest's crop.protocol): square = scale x max(w, h) on the box
    # centre (edgepose's own), roi = scale x (w + h) / 2 on the centre moved by crop_shift (3DDFA_V2's: 1.58, (0, 0.14))
    crop_protocol: str = field(default="square", metadata=one_of(*TRAINING_CROPS))
    crop_shift: tuple = (0.0, 0.0)  # roi only: (dx, dy) of the crop centre, in (w + h) / 2 of the box
    mp_max_fit: float = field(default=0.6, metadata=at_least(0.0))
    limit: int = field(default=0, metadata=at_least(0, whole=True))  # use only the first N rows (smoke runs); 0 = all
    profiled: str = ""  # folder made by `edgepose profile`: synthetic large-yaw views added to the training rows
    profiled_extra: tuple = ()  # more such folders (e.g. renders with other --seed values), added alike
    labels: str = ""  # CSV made by `edgepose label`: replaces the fused labels; pool rows it drops are not used
    # with labels: also drop rows below this confidence
    labels_min_confidence: float = field(default=0.0, metadata=between(0.0, 1.0))
    profiled_relabel: bool = False  # with labels and profiled: a view's label = its source face's label in the labels
    # file composed with the view's turn (views and pool rows agree on the source pose); False = as rendered
    profiled_fit_model: str = ""  # 3D face model folder: a view's label = that model fitted to its source's 68 points
    # (the pose 300W-LP would give it) composed with the view's turn; instead of profiled_relabel
    # leave out pool (real) rows whose label |yaw| exceeds this, so larger yaw is taught
    # only by the profiled views' exact turns (their sources still relabel them); 0 = keep every row
    pool_max_abs_yaw: float = field(default=0.0, metadata=between(0.0, 180.0))


@dataclass(frozen=True)
class AugmentConfig:
    flip: float = field(default=0.5, metadata=PROBABILITY)
    rotate_deg: float = field(default=15.0, metadata=between(0.0, 180.0))
    scale_jitter: float = field(default=0.12, metadata=between(0.0, 1.0, hi_open=True))
    shift_jitter: float = field(default=0.06, metadata=between(0.0, 1.0, hi_open=True))
    color_jitter: float = field(default=0.25, metadata=between(0.0, 1.0))
    grayscale: float = field(default=0.1, metadata=PROBABILITY)
    lowres: float = field(default=0.15, metadata=PROBABILITY)
    blur: float = field(default=0.0, metadata=PROBABILITY)  # probability of a Gaussian blur (sigma 0.5-1.5 px)
    # probability of random erasing: a box of 5-25 % of the crop filled with noise
    occlusion: float = field(default=0.0, metadata=PROBABILITY)
    # share of crops reframed on the box of their visible AFLW-21 points (the published
    # AFLW2000 protocol's box: ears in, jaw line out) instead of the 68-point box; see train/protocol_box.py
    protocol_box: float = field(default=0.0, metadata=PROBABILITY)
    protocol_box_model: str = ""  # with protocol_box: the 3D face model with ears (a 3DDFA BFM folder) that predicts it


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = field(default=10, metadata=between(1, 100_000, whole=True))
    batch_size: int = field(default=128, metadata=between(1, 1 << 16, whole=True))
    lr: float = field(default=2e-3, metadata=between(0.0, 10.0, lo_open=True))
    weight_decay: float = field(default=0.05, metadata=at_least(0.0))
    warmup_epochs: float = field(default=0.3, metadata=at_least(0.0))
    ema_decay: float = field(default=0.998, metadata=between(0.0, 1.0, hi_open=True))
    seed: int = field(default=0, metadata=between(0, 2**32 - 1, whole=True))
    threads: int = field(default=0, metadata=between(0, 4096, whole=True))  # 0 = all cores
    # 0 = whole epoch (smoke runs set a few)
    max_steps_per_epoch: int = field(default=0, metadata=at_least(0, whole=True))
    # gradient accumulation: optimizer step every N batches
    accumulate: int = field(default=1, metadata=between(1, 4096, whole=True))
    # label smoothing: Gaussian noise on the target angles (sigma, degrees)
    label_noise_deg: float = field(default=0.0, metadata=between(0.0, 90.0))
    curriculum: tuple = ()  # [[start_epoch, max_abs_deg], ...]: e.g. [[0, 30], [2, 60], [4, 99]] (small angles first)
    # large-angle emphasis: rows whose label |yaw| >= large_yaw_deg are seen this many
    # times per epoch (1 = off)
    large_yaw_repeat: int = field(default=1, metadata=between(1, 100, whole=True))
    large_yaw_deg: float = field(default=60.0, metadata=between(0.0, 180.0))
    # early stopping on the pool-holdout MAE (never the dev set); 0 = off
    patience: int = field(default=0, metadata=at_least(0, whole=True))
    # degrees the holdout MAE must improve by to count as an improvement
    min_delta: float = field(default=0.0, metadata=at_least(0.0))
    keep_epochs: bool = False  # also keep every epoch's checkpoint as epoch_<N>.pt (for `edgepose average`)
    # also checkpoint every N steps inside an epoch (exact mid-epoch resume); 0 = epochs only
    checkpoint_every: int = field(default=0, metadata=at_least(0, whole=True))
    # with model.landmarks: loss = (1 - w) * pose + w * landmarks (0.7 / 0.3)
    landmark_weight: float = field(default=0.3, metadata=between(0.0, 1.0))
    tensorboard: bool = False  # also write TensorBoard scalars to <out>/tensorboard (needs the tensorboard package)
    init: str = ""  # warm start: load the (EMA) weights of this checkpoint before training; '' = from scratch
    # how init's tensors reach this model: exact (same network) or aligned (a variant: blocks dropped, e.g. no
    # squeeze-excite, or activations swapped; tensors paired in order by kind and shape, the rest fresh)
    init_match: str = field(default="exact", metadata=one_of("exact", "aligned"))
    # rot6d head: + w * L1 of the decoded yaw/pitch/roll (radians) beside the geodesic loss
    euler_weight: float = field(default=0.0, metadata=at_least(0.0))
    # best.pt / early stopping by: holdout (all), holdout_views (the profiled views' exact labels; for self-training,
    # where the pool labels come from the model itself), holdout_pool
    select_by: str = field(default="holdout", metadata=one_of(*SELECT_BY))
    # keep every BatchNorm's running statistics as the warm start left them (BN layers in eval mode while training;
    # their scale and shift still learn): fine-tuning a network trained elsewhere on a small pool
    freeze_bn: bool = False


@dataclass(frozen=True)
class DistillConfig:
    """Knowledge distillation from a teacher checkpoint ('' = off). Loss = hard_weight * label loss
    + pose_weight * geodesic(student, teacher pose) [cached] + feature_weight * MSE(adapter(student map), teacher map)
    + kl_weight * T^2 * KL(bins, temperature T) [both online]."""

    teacher: str = ""
    hard_weight: float = field(default=1.0, metadata=at_least(0.0))
    pose_weight: float = field(default=1.0, metadata=at_least(0.0))
    feature_weight: float = field(default=0.0, metadata=at_least(0.0))
    kl_weight: float = field(default=0.0, metadata=at_least(0.0))
    temperature: float = field(default=2.0, metadata=between(0.0, 100.0, lo_open=True))


@dataclass(frozen=True)
class QATConfig:
    """Quantization-aware training with NNCF ('' = off): start from the fp32 checkpoint `init`, insert int8 fake
    quantizers calibrated on `calibration_size` pool crops, then fine-tune with this recipe's train section."""

    init: str = ""
    calibration_size: int = field(default=300, metadata=between(1, 1_000_000, whole=True))
    preset: str = field(default="performance", metadata=one_of(*QAT_PRESETS))  # NNCF's quantization preset


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
        if not isinstance(node, dict):
            raise ConfigError(f"override '{assignment}': '{part}' is a value, not a section; use section.key=value")
    try:
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{assignment}': the value is not valid YAML ({exc}); quote strings, "
                          "e.g. data.root='my folder'") from None


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    """Read a recipe YAML and apply `section.key=value` overrides.

    Raises:
        ConfigError: missing file, bad YAML, unknown keys (with a suggestion) or wrongly typed values.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe '{path}' does not exist; recipes live in recipes/*.yaml (research/ holds the default model's ladder)")
    return recipe_from_yaml(read_utf8(path, "recipe"), overrides, where=f"recipe '{path}'")


def recipe_from_yaml(text: str, overrides: list[str] = (), where: str = "recipe") -> Recipe:
    """Build a Recipe from YAML text (e.g. the copy saved inside a checkpoint)."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of sections (model, data, train, ...), got {type(data).__name__}")
    for assignment in overrides:
        _apply_override(data, assignment)
    recipe = from_mapping(Recipe, data, "", ConfigError)
    check_recipe(recipe)
    return recipe


def check_recipe_name(name, key: str = "'name'") -> None:
    """A recipe name becomes runs/<name> and the name of every bundle made from it: a plain name only."""
    import re

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
        raise ConfigError(f"{key} = {name!r} must be a plain name of letters, digits, '.', '_' and '-' (not starting "
                          "with '.', at most 100 characters): it names the run folder runs/<name> and the bundles made "
                          "from it")


def check_recipe(recipe: Recipe) -> None:
    """Every numeric field inside its declared range, and the curriculum well formed, before anything is written.

    Raises:
        ConfigError: naming the key, the value and the valid range; a name that is not a plain file name.
    """
    check_ranges(recipe, "", ConfigError)
    shift = recipe.data.crop_shift
    if (not isinstance(shift, (list, tuple)) or len(shift) != 2
            or not all(Range(-0.5 * recipe.data.crop_scale, 0.5 * recipe.data.crop_scale, lo_open=True,
                             hi_open=True).holds(v) for v in shift)):
        raise ConfigError(f"'data.crop_shift' {shift!r} must be [dx, dy], each below half of data.crop_scale "
                          f"({recipe.data.crop_scale}) in size: the crop must stay on the face, e.g. [0, 0.14]")
    if shift[0] and recipe.augment.flip:
        raise ConfigError(f"'data.crop_shift' dx {shift[0]} with augment.flip {recipe.augment.flip}: a flipped crop "
                          "would be shifted the other way; keep dx 0 (a roi crop shifts down only) or set flip to 0")
    if recipe.data.crop_protocol == "square" and any(shift):
        raise ConfigError(f"'data.crop_shift' {list(shift)} moves a roi crop; the square protocol is centred on the box "
                          "(set data.crop_protocol: roi, or crop_shift: [0, 0])")
    for entry in recipe.train.curriculum:
        if (not isinstance(entry, (list, tuple)) or len(entry) != 2 or not Range(0, whole=True).holds(entry[0])
                or not Range(0.0, 180.0, lo_open=True).holds(entry[1])):
            raise ConfigError(f"'train.curriculum' entry {entry!r} must be [start_epoch, max_abs_deg] with start_epoch a "
                              "whole number >= 0 and 0 < max_abs_deg <= 180, e.g. [[0, 30], [2, 60], [4, 99]]")


def recipe_to_yaml(recipe: Recipe) -> str:
    return yaml.safe_dump(dataclasses.asdict(recipe), sort_keys=False)
