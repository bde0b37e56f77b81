"""Writing files atomically: a temporary file beside the target, fsync, then rename, so a reader or a killed writer
never sees half a file and concurrent writers never collide."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = False):
    """A temporary path beside `path` (unique to this writer) that becomes `path` by rename when the block succeeds
    and is removed when it fails, so readers never see half a file and concurrent writers never collide.
    keep_suffix: the temporary name ends with `path`'s extension (for writers that choose a format by it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + (path.suffix if keep_suffix else ""))
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; bundles and caches are meant to be shared
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | Path):
    """A binary file to write that appears at `path` only once the block succeeds (see `atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and rename, so readers never see half a file."""
    with atomic_open(path) as f:
        f.write(data)


def check_output_folder(path: str | Path, what: str = "--out") -> Path:
    """`path` as a Path, refused before any work when it cannot become a folder: an existing file, or under one.

    Raises:
        ConfigError: naming the file in the way.
    """
    from .errors import ConfigError

    path = Path(path)
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ConfigError(f"{what} '{path}': '{blocker}' is a file, not a folder; give a folder path")
    return path


STAGED = ".staged-"  # + the writer's process id + a random part


@contextlib.contextmanager
def staged_folder(out: str | Path):
    """A new hidden folder inside `out` (so on its file system, whatever is mounted where) to build a folder's files
    in before `publish` moves them into `out`. It is removed when the block ends, whatever happened, and so is `out`
    if this made it and it stayed empty; one a killed writer left is found by `stale_stages`."""
    out = Path(out)
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out, prefix=f"{STAGED}{os.getpid()}-"))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if made and not any(out.iterdir()):
            out.rmdir()


def stale_stages(out: Path) -> list[Path]:
    """Staging folders in `out` whose writer is gone (killed); a running writer's (another export into the same
    folder) is left alone."""
    stale = []
    for path in out.glob(STAGED + "*") if out.is_dir() else ():
        pid = path.name[len(STAGED):].split("-")[0]
        try:
            os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
        except (ValueError, ProcessLookupError):
            stale.append(path)
        except PermissionError:  # it exists, owned by someone else
            pass
    return stale


def publish(stage: Path, out: Path, names: list[str]) -> None:
    """Move the finished files `names` from `stage` into folder `out` by rename, in that order (put the file that
    vouches for the others, such as a manifest with their checksums, last). Other files in `out` stay."""
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        os.replace(stage / name, out / name)


def atomic_write_json(path: str | Path, obj, **json_options) -> None:
    """Write `obj` as JSON (indent 2 unless `json_options` say otherwise) to `path` atomically."""
    import json

    atomic_write_bytes(path, (json.dumps(obj, **{"indent": 2, **json_options}) + "\n").encode())
