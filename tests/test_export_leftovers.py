"""A killed or failed export changes nothing in the bundle folder, the next export sweeps what an older one left, and
a bundle re-exported in another format keeps no stale model file."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
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
    staged = [p.name for p in out.iterdir()]
    assert len(staged) == 1 and staged[0].startswith(".staged-")  # nothing but the killed export's staging folder...

    # what an older version's killed export left, and a half-written artifact of an atomic write
    (out / "tmpabcd1234").mkdir()
    (out / "tmpabcd1234" / "fp32.onnx").write_bytes(b"x" * 1000)
    (out / ".model.onnx.k2j3h4.tmp").write_bytes(b"x" * 1000)
    (out / "notes-tmp.txt").write_text("the user's own file stays")
    export_bundle(WEIGHTS, "cpu", out, measure=False)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.onnx", "notes-tmp.txt"]
    # ...swept by the next export (the other files are the bundle and the user's own)


@pytest.mark.slow
def test_a_failed_export_keeps_the_old_bundle_and_another_format_replaces_the_model_file(tmp_path, monkeypatch):
    from edgepose import Runtime
    from edgepose.errors import ConfigError
    from edgepose.exporters import export
    from edgepose.exporters.export import export_bundle

    out = tmp_path / "bundle"
    export_bundle(WEIGHTS, "cpu", out, measure=False)
    (out / "notes.txt").write_text("the user's own file stays")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("the converter crashed")

    monkeypatch.setattr(export, "write_onnx", broken)
    with pytest.raises(RuntimeError, match="crashed"):
        export_bundle(WEIGHTS, "cpu", out, measure=False)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched (no staging left), still working
    with pytest.raises(RuntimeError, match="crashed"):
        monkeypatch.setattr(export, "write_onnx", broken)
        export_bundle(WEIGHTS, "cpu", tmp_path / "new", measure=False)
    monkeypatch.undo()
    assert not (tmp_path / "new").exists()  # a folder the failed export made is not left behind

    export_bundle(WEIGHTS, "raspberry-pi", out, measure=False)  # LiteRT: model.tflite replaces model.onnx
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.tflite", "notes.txt"]
    assert json.loads((out / "manifest.json").read_text())["model_file"] == "model.tflite"
    with Runtime("raspberry-pi", model=str(out), threads=1) as rt:
        assert rt.infer_crops(np.zeros((1, 128, 128, 3), np.uint8)).shape == (1, 3)

    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        export_bundle(WEIGHTS, "cpu", tmp_path / "a-file" / "bundle", measure=False)
