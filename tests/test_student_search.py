"""benchmarks/student_search.py: MAC counting, the Pareto front, and a --quick run with real exports and engines."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the student search exports models: pip install 'edgepose[train]'")

from .conftest import SHARED, need  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PEER = SHARED / "models" / "peers" / "3ddfa-v2-mb05.onnx"


@pytest.fixture(scope="module")
def search():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import student_search
    finally:
        sys.path.pop(0)
    return student_search


def test_onnx_mac_count_matches_the_torch_hook_count(search, tmp_path):
    from edgepose.exporters.onnx_export import write_onnx
    from edgepose.manifest import InputSpec
    from edgepose.train.models import complexity, create

    model = create("mobilenetv1_x025").eval()
    params, macs = complexity(model, 64)
    onnx_params, onnx_macs = search.onnx_complexity(write_onnx(model, InputSpec(size=(64, 64)), tmp_path / "m.onnx"))
    assert onnx_macs == macs  # BatchNorm folds into the convolutions: same MACs, fewer parameters
    assert 0.9 * params < onnx_params < params


def test_peer_complexity_is_the_published_one(search):
    params, macs = search.onnx_complexity(need(PEER))
    assert 0.8e6 < params < 0.9e6 and 45e6 < macs < 55e6  # its README: 0.85 M parameters, about 50 M MACs


def test_pareto_front_and_ratios_against_the_peer(search):
    assert search.pareto([(1.0, 5.0), (2.0, 4.0), (2.0, 6.0), (1.0, 5.0), (3.0, 4.0)]) == [True, True, False, True, False]
    cands = [search.Candidate("a", 96, 1, 10, {e: None for e in search.ENGINES}, metrics={"dev_mae": 5.0}),
             search.Candidate("b", 96, 1, 20, {e: None for e in search.ENGINES}, metrics={"dev_mae": 6.0}),
             search.Candidate("peer", 120, 1, 50, {"ort_fp32": None, "ort_int8": None})]
    times = {0: {"ort_fp32": [1.0, 2.0], "ort_int8": [0.5, 1.0], "litert_fp32": [1, 1], "litert_int8": [2, 2]},
             1: {"ort_fp32": [2.0, 4.0], "ort_int8": [4.0, 8.0], "litert_fp32": [1, 1], "litert_int8": [1, 1]},
             2: {"ort_fp32": [2.0, 4.0], "ort_int8": [1.0, 2.0]}}
    a, b, peer = search.table_rows(cands, times, peer=2)
    assert a["x peer"] == 0.5 and b["x peer"] == 1.0 and peer["x peer"] == 1.0  # per-round ratios: drift cancels
    assert a["ort_int8 x peer"] == 0.25 and a["litert_int8 x peer"] == 0.75 and "litert_fp32 x peer" not in peer
    assert a["ort fp32/int8"] == 2.0 and b["ort fp32/int8"] == 0.5 and a["litert fp32/int8"] == 0.5
    assert a["pareto"] == "yes (dev MAE)" and not b.get("pareto") and "pareto" not in peer


def test_candidate_sizes_take_one_size_per_entry_or_all(search):
    from edgepose.errors import ConfigError

    assert search.candidate_sizes("mobilenetv1_x050@128,mobilefacenet", "96,112") == [
        ("mobilenetv1_x050", 128), ("mobilefacenet", 96), ("mobilefacenet", 112)]
    with pytest.raises(ConfigError, match="Did you mean 'mobilefacenet'"):
        search.candidate_sizes("mobilefacenett", "96")
    with pytest.raises(ConfigError, match="whole numbers"):
        search.candidate_sizes("mobilefacenet@big", "96")


@pytest.mark.slow  # exports 2 candidates four ways (LiteRT conversions) + quantizes the peer: ~1 min
def test_quick_run_prints_the_table_and_writes_the_json(search, tmp_path, pool_root, capsys):
    ckpts = tmp_path / "ckpts"
    ckpts.mkdir()
    (ckpts / "mbv3s.pt").symlink_to(REPO / "weights" / "student_mbv3s_rot6d.pt")  # mobilenetv3_small @ 112, trained
    out, work = tmp_path / "search.json", tmp_path / "work"
    argv = ["--candidates", "mobilenetv3_small,mobilenetv1_x025", "--sizes", "112", "--quick", "--pool",
            str(pool_root), "--peer", str(need(PEER)), "--checkpoints", str(ckpts), "--work", str(work), "--out"]
    assert search.main(argv + [str(out)]) == 0
    printed = capsys.readouterr().out
    lines = [ln for ln in printed.splitlines() if ln.startswith("| ")]
    assert lines[0].startswith("| candidate | input |") and len(lines) == 1 + 3  # header + 3 rows
    assert all(len(ln.split("|")) == len(search.COLUMNS) + 2 for ln in lines)
    assert "Pareto front (x peer vs dev MAE): mobilenetv3_small @ 112" in printed
    result = json.loads(out.read_text())
    rows = {r["candidate"]: r for r in result["rows"]}
    assert set(rows) == {"mobilenetv3_small", "mobilenetv1_x025", "3DDFA_V2 mb05 (peer)"}
    for name in ("mobilenetv3_small", "mobilenetv1_x025"):
        assert all(rows[name][f"{e} ms"] > 0 for e in search.ENGINES) and rows[name]["x peer"] > 0
    assert rows["3DDFA_V2 mb05 (peer)"]["ort_int8 ms"] > 0 and "litert_fp32 ms" not in rows["3DDFA_V2 mb05 (peer)"]
    trained = rows["mobilenetv3_small"]
    assert trained["checkpoint"].endswith("mbv3s.pt") and abs(trained["dev MAE"] - 6.62) < 0.01
    assert trained["holdout MAE"] > 0 and "dev MAE" not in rows["mobilenetv1_x025"]
    assert all(len(r["ort_fp32"]) == 2 for r in result["round_p50_ms"]) and result["rounds"] == 2
    exported = {p.name: p.stat().st_mtime_ns for p in work.iterdir()}
    assert len(exported) == 2 * 4 + 1  # four artifacts per candidate + the peer's int8
    assert search.main(argv + [str(tmp_path / "again.json")]) == 0  # a rerun on --work re-times, exports nothing
    assert {p.name: p.stat().st_mtime_ns for p in work.iterdir()} == exported
    assert len(json.loads((tmp_path / "again.json").read_text())["rows"]) == 3
