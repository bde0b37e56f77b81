"""Many boxes in one frame: the pose model gets bounded chunks, so peak memory stays flat (was 5 GB for 5,000 boxes)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

# run in a fresh interpreter: VmHWM (peak RSS) is per process and cannot be lowered again
SCRIPT = """
import sys
import numpy as np
from edgepose import Runtime

def peak_mb():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024

n = int(sys.argv[1])
rt = Runtime("cpu", threads=1)
frame = np.full((480, 640, 3), 90, np.uint8)
rt.infer(frame, boxes=[(200, 120, 360, 300)] * 64)  # warm: engine arenas and one full chunk allocated
before = peak_mb()
poses = rt.infer(frame, boxes=[(200, 120, 360, 300)] * n)
print(len(poses), peak_mb() - before, len({(p.yaw, p.pitch, p.roll) for p in poses}))
"""


def peak_rise_mb(boxes: int) -> float:
    if not Path("/proc/self/status").is_file():
        pytest.skip("needs Linux /proc")
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(boxes)], cwd=REPO, capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(REPO)}).stdout.split()
    count, rise, distinct = int(out[0]), float(out[1]), int(out[2])
    assert count == boxes and distinct == 1  # one pose per box, the same box gives the same pose in every chunk
    return rise


def test_600_boxes_stay_flat():
    assert peak_rise_mb(600) < 120  # unchunked, 600 crops at 128 px took ~500 MB


@pytest.mark.slow
def test_3000_boxes_raise_peak_memory_by_less_than_600_mb():
    assert peak_rise_mb(3000) < 600
