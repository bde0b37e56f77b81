"""Where TensorRT is absent (CPU machines, CI), asking for it says why and what to install — never a traceback."""
import subprocess
import sys

import pytest

from edgepose.backends import backend_available

pytestmark = pytest.mark.skipif(backend_available("tensorrt")[0], reason="TensorRT is installed here")


def test_runtime_jetson_names_the_extra():
    from edgepose import BackendUnavailableError, Runtime

    with pytest.raises(BackendUnavailableError, match=r"pip install 'edgepose\[tensorrt\]'"):
        Runtime("jetson")


def test_latency_benchmark_explains_jetson(tmp_path):
    r = subprocess.run([sys.executable, "benchmarks/latency.py", "--platform", "jetson", "--runs", "3",
                        "--out-dir", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 3
    assert "not usable on this machine" in r.stderr and "Traceback" not in r.stderr


def test_platforms_lists_jetson_as_unusable():
    r = subprocess.run([sys.executable, "-m", "edgepose", "platforms"], capture_output=True, text=True)
    line = next(l for l in r.stdout.splitlines() if l.startswith("jetson "))
    assert "not usable here" in line and "tensorrt" in line
