"""Third-party models described by manifests run through the same Runtime and reproduce their published figures."""
from pathlib import Path

import pytest

from edgepose.evaluate import evaluate

PEERS = Path(__file__).resolve().parent.parent / "benchmarks" / "peers"
MODELS = Path(__file__).resolve().parent.parent.parent / "shared" / "models" / "peers"


@pytest.mark.parametrize("manifest, expected", [("fsanet.json", 5.19),
                                                pytest.param("whenet.json", 5.47, marks=pytest.mark.slow)])
def test_peer_reproduces_its_accuracy(manifest, expected, dev_root):
    from edgepose import Runtime

    if not MODELS.is_dir():
        pytest.skip(f"{MODELS} is absent")
    with Runtime("cpu", model=str(PEERS / manifest), threads=1) as rt:
        summary, _, _ = evaluate(rt, "aflw2000", str(dev_root), progress=False)
    assert summary["mean"] == pytest.approx(expected, abs=0.3)
