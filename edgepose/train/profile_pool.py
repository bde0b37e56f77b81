"""`edgepose profile`: synthetic large-pose views of the pool's 68-point faces, with exact labels, as a dataset.

Sources are pool rows with 68 annotated landmarks whose fused label is trustworthy (Face Mesh fitted well, near
frontal); each gets `views` renders turned toward the side it already faces, to |yaw| drawn from `yaw_range`,
plus a small pitch change. Output: a folder of shards `profiled_XXXX.npz` (written atomically, skipped when
present, so an interrupted run resumes) and `meta.json` (the settings and the 3D model used).
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..atomic import atomic_open, atomic_write_bytes, check_output_folder
from ..datasets.faces_pool import FusionRule, fuse_labels, mp_fit_ok, read_pool_index
from ..errors import ConfigError
from .face_model import fit_pose, load_face_model
from .profiling import profile_view, rotated_label

SHARD = 500


@dataclass(frozen=True)
class ProfileSettings:
    views: int = 2  # renders per source face
    yaw_min: float = 35.0  # target |yaw| range, degrees
    yaw_max: float = 88.0
    pitch_jitter: float = 10.0  # pitch change drawn from +-this
    min_turn: float = 15.0  # skip renders that turn the face by less than this
    source_max_yaw: float = 40.0  # source faces: |fused yaw| at most this ...
    source_max_pitch: float = 30.0
    max_fit_rms: float = 0.06  # ... and a 3D fit residual at most this fraction of the 68-point box size
    seed: int = 0

    def __post_init__(self):
        import math

        numbers = asdict(self)
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in numbers.values()):
            raise ConfigError(f"profile settings (--views, --yaw-min, --yaw-max, ...) must be finite numbers, got {numbers}")
        if self.views < 1 or not 0 <= self.yaw_min < self.yaw_max <= 99:
            raise ConfigError(f"profile: --views {self.views} must be >= 1 and --yaw-min {self.yaw_min:g} < --yaw-max "
                              f"{self.yaw_max:g} within 0..99 degrees (the |yaw| range the renders are turned to)")
        if min(self.pitch_jitter, self.min_turn, self.source_max_yaw, self.source_max_pitch, self.max_fit_rms) < 0:
            raise ConfigError(f"profile settings must not be negative, got {numbers}")


def source_rows(pool_root: str | Path, settings: ProfileSettings) -> tuple[np.ndarray, object, np.ndarray]:
    """Pool rows usable as profiling sources, the pool table and the fused labels."""
    table = read_pool_index(pool_root)
    labels, keep = fuse_labels(table, FusionRule())
    has68 = np.array([pts is not None and len(pts) == 68 for pts in table.landmarks])
    ok = keep & has68 & mp_fit_ok(table) & (np.abs(labels[:, 0]) <= settings.source_max_yaw)
    ok &= np.abs(labels[:, 1]) <= settings.source_max_pitch
    return np.flatnonzero(ok), table, labels


def _render_shard(job: tuple) -> dict:
    pool_root, model_path, rows, paths, points, labels, settings = job
    model = load_face_model(model_path)
    s = ProfileSettings(**settings)
    out = {k: [] for k in ("images", "angles", "landmarks", "boxes", "source_row", "turn")}
    for row, rel, pts, lab in zip(rows, paths, points, labels):
        rng = np.random.default_rng([s.seed, int(row)])
        img = cv2.imread(str(Path(pool_root) / rel), cv2.IMREAD_COLOR)
        side = 1 if lab[0] > 8 else -1 if lab[0] < -8 else (1 if rng.random() < 0.5 else -1)
        try:
            fit = fit_pose(model, pts)
        except ValueError:
            continue
        if fit.rms > s.max_fit_rms * float(np.ptp(pts, 0).max()):
            continue  # the mean face does not match these landmarks: no exact label possible
        for _ in range(s.views):
            target = rng.uniform(s.yaw_min, s.yaw_max)
            d_yaw, d_pitch = side * target - lab[0], rng.uniform(-s.pitch_jitter, s.pitch_jitter)
            if abs(d_yaw) < s.min_turn:
                continue
            view = profile_view(img, pts, model, d_yaw, d_pitch, fit=fit)
            out["images"].append(view.image)
            out["angles"].append(rotated_label(lab, d_yaw, d_pitch))
            out["landmarks"].append(view.landmarks)
            out["boxes"].append(view.box)
            out["source_row"].append(row)
            out["turn"].append((d_yaw, d_pitch))
    return {k: np.array(v) for k, v in out.items()}


def _one_thread() -> None:
    """Worker set-up: one BLAS / OpenCV thread per process, so workers do not oversubscribe the cores."""
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    cv2.setNumThreads(1)


def generate(pool_root: str | Path, model_path: str | Path, out_dir: str | Path, settings: ProfileSettings,
             workers: int = 1, limit: int = 0) -> Path:
    """Render the profiled set into `out_dir` (shards + meta.json); returns the folder. A folder holding shards of an
    interrupted run resumes, if that run had the same pool, face model, settings and limit (ConfigError otherwise)."""
    out = check_output_folder(Path(out_dir).expanduser(), "--out")
    model = load_face_model(model_path)  # inputs first: a bad path leaves no folder behind
    rows, table, labels = source_rows(pool_root, settings)
    if limit:
        rows = rows[:limit]
    meta = {"pool": str(Path(pool_root).resolve()), "face_model": model.name, "settings": asdict(settings),
            "sources": int(len(rows)), "shard": SHARD}
    _claim(out, meta)
    jobs, names = [], []
    for k, start in enumerate(range(0, len(rows), SHARD)):
        name = out / f"profiled_{k:04d}.npz"
        if name.is_file():
            continue
        r = rows[start:start + SHARD]
        jobs.append((str(pool_root), str(model_path), r, [table.paths[i] for i in r],
                     [table.landmarks[i] for i in r], labels[r].astype(np.float64), asdict(settings)))
        names.append(name)
    # one worker renders in this process; more use spawned processes (forking a process whose torch/OpenMP threads
    # are running can deadlock the child)
    pool = None
    if workers > 1:
        pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_one_thread)
    try:
        results = pool.map(_render_shard, jobs) if pool else map(_render_shard, jobs)
        for name, shard in tqdm(zip(names, results), total=len(jobs), desc="profiling faces", unit="shard"):
            shard["source_path"] = np.array([table.paths[i] for i in shard["source_row"]])
            with atomic_open(name) as f:
                np.savez(f, **shard)
    finally:
        if pool:
            pool.shutdown()
    atomic_write_bytes(out / "meta.json", json.dumps(meta, indent=2).encode())
    return out


JOB = ".profile-job.json"  # what a run in this folder renders; a resumed run must render the same


def _claim(out: Path, meta: dict) -> None:
    """Record the job in `out`, or check that shards already there were rendered for the same job."""
    job = out / JOB
    if job.is_file() or (out / "meta.json").is_file():
        try:
            before = json.loads((job if job.is_file() else out / "meta.json").read_text())
        except ValueError:
            before = None
        if before != meta:
            raise ConfigError(f"--out '{out}' holds a profiled set rendered with other inputs or settings "
                              f"({before if before is None else {k: v for k, v in before.items() if meta.get(k) != v}}); "
                              "give a new --out folder, or run with the settings it was made with to resume it")
    elif any(out.glob("profiled_*.npz")):
        raise ConfigError(f"--out '{out}' holds profiled shards of unknown origin; give a new --out folder")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(job, json.dumps(meta, indent=2).encode())


def load_profiled(folder: str | Path) -> dict:
    """All shards of a profiled set concatenated: images (N,128,128,3) uint8, angles (N,3), landmarks (N,68,2),
    boxes (N,4), source_path (N,) and turn (N,2)."""
    folder = Path(folder).expanduser()
    shards = sorted(folder.glob("profiled_*.npz"))
    if not (folder / "meta.json").is_file() or not shards:
        raise ConfigError(f"no finished profiled set in '{folder}'; make one with `edgepose profile` (a recipe that "
                          "reads one names the command in its header comment; an interrupted run resumes)")
    parts = [dict(np.load(p)) for p in shards]
    parts = [p for p in parts if len(p["images"])]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
