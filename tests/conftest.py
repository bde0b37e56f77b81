"""Shared fixtures: the research data lives in ../shared (read-only); tests skip with a reason without it."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
DEV = SHARED / "data" / "aflw2000-dev"
POOL = SHARED / "data" / "faces"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: these tests read the shared research data beside the repository")
    return path


@pytest.fixture(scope="session")
def dev_root() -> Path:
    return need(DEV)


@pytest.fixture(scope="session")
def pool_root() -> Path:
    return need(POOL)


@pytest.fixture(scope="session")
def dev_samples(dev_root):
    from edgepose.datasets.aflw2000 import read_aflw2000

    return read_aflw2000(dev_root)


@pytest.fixture(scope="session")
def astronaut_bgr() -> np.ndarray:
    data = pytest.importorskip("skimage.data", reason="scikit-image provides the public-domain demo frame")
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def runtime():
    from edgepose import Runtime

    with Runtime("cpu", threads=1) as rt:
        yield rt


@pytest.fixture(scope="session", autouse=True)
def empty_edgepose_home(tmp_path_factory):
    """Tests never see the user's cache: `detector: auto` is Haar unless a test fetches into its own EDGEPOSE_HOME."""
    import os

    old = os.environ.get("EDGEPOSE_HOME")
    os.environ["EDGEPOSE_HOME"] = str(tmp_path_factory.mktemp("edgepose-home"))
    yield
    if old is None:
        os.environ.pop("EDGEPOSE_HOME", None)
    else:
        os.environ["EDGEPOSE_HOME"] = old


@pytest.fixture()
def fetched_home(tmp_path, monkeypatch):
    """An EDGEPOSE_HOME holding the BlazeFace models, as `edgepose detectors fetch --from ../shared/...` leaves it."""
    from edgepose.detectors.fetch import fetch

    monkeypatch.setenv("EDGEPOSE_HOME", str(tmp_path))
    fetch(need(SHARED / "models" / "detectors"), log=lambda *a: None)
    return tmp_path
