"""Writing files atomically: a temporary file beside the target, fsync, then rename, so a reader or a killed writer
never sees half a file and concurrent writers never collide."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """A temporary path beside `path` (unique to this writer) that becomes `path` by rename when the block succeeds
    and is removed when it fails, so readers never see half a file and concurrent writers never collide."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
