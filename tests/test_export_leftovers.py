"""A killed export leaves no work folder in the bundle folder, and the next export sweeps what an older one left."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="exporting needs torch: pip install 'edgepose[train]'")

from .conftest import REPO  # noqa: E402

WEIGHTS = REPO / "weights" / "student_mbv3s_128_3ddfa_yaw2.pt"


@pytest.mark.slow
def test_killed_export_leaves_nothing_in_the_bundle_folder_and_the_next_export_cleans_up(tmp_path):
    from edgepose.exporters.export import export_bundle

    out, system_tmp = tmp_path / "bundle", tmp_path / "system-tmp"
    system_tmp.mkdir()
    code = f"from edgepose.exporters.export import export_bundle\nexport_bundle({str(WEIGHTS)!r}, 'cpu', {str(out)!r}, measure=False)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "TMPDIR": str(system_tmp)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:  # kill it once the ONNX graph is being written
        if any((w / "fp32.onnx").exists() or any(w.glob(".fp32.onnx.*")) for w in system_tmp.glob("edgepose-export-*")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the export ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not [p.name for p in out.iterdir() if p.name.startswith("tmp")]  # the work folder was never in the bundle

    # what an older version's killed export left, and a half-written artifact of an atomic write
    (out / "tmpabcd1234").mkdir()
    (out / "tmpabcd1234" / "fp32.onnx").write_bytes(b"x" * 1000)
    (out / ".model.onnx.k2j3h4.tmp").write_bytes(b"x" * 1000)
    (out / "notes-tmp.txt").write_text("the user's own file stays")
    export_bundle(WEIGHTS, "cpu", out, measure=False)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.onnx", "notes-tmp.txt"]
