"""The user's edgepose folder ($EDGEPOSE_HOME, default ~/.cache/edgepose): fetched detectors, device-built bundles."""
from __future__ import annotations

import os
from pathlib import Path

HOME_VARIABLE = "$EDGEPOSE_HOME"


def edgepose_home() -> Path:
    """$EDGEPOSE_HOME, else ~/.cache/edgepose."""
    return Path(os.environ.get("EDGEPOSE_HOME") or Path.home() / ".cache" / "edgepose").expanduser()


def expand_home(path: str) -> str:
    """`path` with a leading $EDGEPOSE_HOME (or ${EDGEPOSE_HOME}) replaced by `edgepose_home()` and ~ expanded, so a
    platform file can name a bundle in the user's folder whether or not the variable is set."""
    for prefix in (HOME_VARIABLE, "${EDGEPOSE_HOME}"):
        if path == prefix or path.startswith(prefix + "/"):
            return str(edgepose_home()) + path[len(prefix):]
    return str(Path(path).expanduser()) if path.startswith("~") else path
