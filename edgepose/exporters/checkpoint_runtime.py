"""Running a training checkpoint through the Runtime: export it for the platform into a temporary bundle first.
Host code (it needs torch through the exporters); the device half only ever opens bundles."""
from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ConfigError, ModelFormatError
from ..platform import load_platform


@contextmanager
def checkpoint_bundle(model: str | Path | None, platform: str = "cpu", **export_options) -> Iterator[str | None]:
    """`model` as `Runtime(model=...)` takes it. A training checkpoint (.pt) is first exported for `platform` into a
    temporary bundle, removed on exit (this needs edgepose[train]); bundles, manifests and None pass through.
    `export_options` go to `edgepose.exporters.export.export_bundle` (e.g. calibration=DIR for int8 platforms, whose
    default is the recipe's training pool, relative to where it was trained).

    Raises:
        ModelFormatError: the checkpoint file does not exist.
        ConfigError: torch (edgepose[train]) is not installed.
    """
    if model is None or Path(model).suffix != ".pt":
        yield None if model is None else str(model)
        return
    model = Path(model).expanduser()
    if not model.is_file():
        raise ModelFormatError(f"checkpoint '{model}' does not exist; give a training checkpoint (.pt), a bundle "
                               "folder or a manifest JSON")
    try:
        from .export import export_bundle
    except ImportError as exc:
        raise ConfigError(f"'{model}' is a training checkpoint: running it exports it first, which needs torch "
                          "(pip install 'edgepose[train]'); or pass a bundle made by `edgepose export`") from exc
    with tempfile.TemporaryDirectory(prefix="edgepose-checkpoint-") as tmp:
        # the platform's own precision, as asked: running a checkpoint never swaps int8 for fp32 (int8_if_faster)
        options = {"precision": load_platform(platform).precision, **export_options}
        yield str(export_bundle(model, platform, Path(tmp) / model.stem, measure=False, **options).parent)


@contextmanager
def open_runtime(platform: str, model: str | Path | None = None, **runtime_options) -> Iterator:
    """`Runtime(platform, model=..., **runtime_options)` for any model the command line takes: a training checkpoint
    is exported for `platform` first (`checkpoint_bundle`) and its temporary bundle removed after the runtime closes."""
    from ..runtime import Runtime

    with checkpoint_bundle(model, platform) as bundle, Runtime(platform, model=bundle, **runtime_options) as rt:
        yield rt
