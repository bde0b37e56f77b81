"""The data engine (`edgepose label`): votes, consensus, agreement filtering, the labels file in training."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose.data_engine import LabelSettings, consensus, label_folder, label_pool
from edgepose.datasets.labels_csv import read_labels
from edgepose.errors import ConfigError

FSANET = str(Path(__file__).resolve().parent.parent / "benchmarks" / "peers" / "fsanet.json")
PEER_MODELS = str(Path(__file__).resolve().parent.parent.parent / "shared" / "models" / "peers")


def test_consensus_of_agreeing_votes_is_the_vote_and_missing_votes_are_skipped():
    votes = np.array([[[20.0, -5.0, 3.0], [20.0, -5.0, 3.0], [np.nan, np.nan, np.nan]],
                      [[10.0, 0.0, 0.0], [30.0, 0.0, 0.0], [20.0, 0.0, 0.0]]])
    angles, spread = consensus(votes)
    np.testing.assert_allclose(angles[0], [20.0, -5.0, 3.0], atol=1e-6)
    assert spread[0] < 1e-3
    np.testing.assert_allclose(angles[1], [20.0, 0.0, 0.0], atol=1e-6)
    assert spread[1] == pytest.approx(20.0 / 3, abs=1e-3)


def test_weighted_consensus_leans_toward_the_heavier_vote_and_zero_weight_alone_is_no_label():
    votes = np.array([[[10.0, 0.0, 0.0], [30.0, 0.0, 0.0]], [[np.nan] * 3, [30.0, 0.0, 0.0]]])
    angles, spread = consensus(votes, np.array([3.0, 1.0]))
    assert angles[0, 0] == pytest.approx(15.0, abs=0.2)  # chordal mean: about the weighted mean of the yaws
    assert spread[0] == pytest.approx(10.0, abs=0.2)  # the spread stays the plain mean distance of the votes
    np.testing.assert_allclose(angles[1], [30.0, 0.0, 0.0], atol=1e-6)
    angles, spread = consensus(votes, np.array([1.0, 0.0]))
    assert angles[0, 0] == pytest.approx(10.0, abs=1e-6)
    assert np.isnan(angles[1]).all() and np.isnan(spread[1])


def _mini_pool(pool_root: Path, tmp: Path, rows: int, flip_coarse: bool) -> Path:
    """A copy of the first `rows` pool rows that have a coarse class; the first row's class sign flipped."""
    with open(pool_root / "index.csv", newline="") as f:
        reader = csv.DictReader(f)
        picked = [r for r in reader if r["coarse_yaw"] not in ("", "0")][:rows]
        fields = reader.fieldnames
    if flip_coarse:
        picked[0]["coarse_yaw"] = str(-int(float(picked[0]["coarse_yaw"])))
    for r in picked:
        (tmp / r["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pool_root / r["path"], tmp / r["path"])
    with open(tmp / "index.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(picked)
    return tmp


def test_label_pool_with_a_teacher_index_votes_and_landmarks(pool_root, tmp_path):
    from .conftest import SHARED, need

    root = _mini_pool(pool_root, tmp_path / "pool", 12, flip_coarse=True)
    out = tmp_path / "labels.csv"
    summary = label_pool(root, out, [FSANET], ["fsa", "whenet"], str(need(SHARED / "models" / "mesh" / "bfm_mean_3ddfa")),
                         models_dir=PEER_MODELS)
    assert summary["rows"] == 12
    assert summary["votes"] == {"fsa": 1.0, "whenet": 1.0, "landmarks": 1.0, "fsanet": 1.0}
    rows = list(csv.DictReader(open(out)))
    assert rows[0]["keep"] == "0"  # its yaw sign contradicts the (flipped) coarse class
    kept = read_labels(out)
    assert len(kept) == summary["kept"] and rows[0]["path"] not in kept
    # the same public model on the 128 px crop agrees with its stored output on the original photo
    mine = np.array([[float(r[f"fsanet_{a}"]) for a in ("yaw", "pitch", "roll")] for r in rows])
    stored = np.array([[float(r[f"fsa_{a}"]) for a in ("yaw", "pitch", "roll")] for r in rows])
    assert np.abs(mine - stored).mean() < 6.0
    assert all(0 < float(r["confidence"]) <= 1 for r in rows)
    assert all(r["landmarks_yaw"] == "" for r in rows)  # these sources have no 68-point annotation: no vote


def test_labels_file_drives_training_rows(pool_root, tmp_path):
    from edgepose.train.pool_data import PoolData
    from edgepose.train.recipe import DataConfig

    root = _mini_pool(pool_root, tmp_path / "pool", 12, flip_coarse=True)
    out = tmp_path / "labels.csv"
    label_pool(root, out, [], ["fsa", "whenet"], settings=LabelSettings(flip=False))
    data = PoolData(DataConfig(root=str(root), labels=str(out), holdout=0.0))
    kept = read_labels(out)
    assert len(data.angles) == len(kept) == 11
    np.testing.assert_allclose(sorted(map(tuple, data.angles)), sorted(map(tuple, kept.values())), atol=1e-5)


def test_fused_vote_is_the_default_training_label(pool_root, tmp_path):
    from edgepose.datasets.faces_pool import fuse_labels, read_pool_index

    root = _mini_pool(pool_root, tmp_path / "pool", 12, flip_coarse=True)
    out = tmp_path / "labels.csv"
    label_pool(root, out, [], ["fused"], settings=LabelSettings(flip=False, coarse_filter=False))
    fused, keep = fuse_labels(read_pool_index(root))
    rows = list(csv.DictReader(open(out)))
    got = np.array([[float(r[a]) for a in ("yaw", "pitch", "roll")] for r in rows])
    np.testing.assert_allclose(got[keep], fused[keep], atol=0.02)  # one vote: the consensus is the vote itself
    assert all(r["keep"] == str(int(k)) for r, k in zip(rows, keep))


def test_label_folder_runs_the_detector_and_counts_faceless_images(tmp_path, astronaut_bgr):
    from .conftest import SHARED, need

    need(SHARED / "models" / "peers")  # the FSA-Net model files are there
    cv2.imwrite(str(tmp_path / "astronaut.jpg"), astronaut_bgr)
    cv2.imwrite(str(tmp_path / "blank.png"), np.full((240, 320, 3), 128, np.uint8))
    summary = label_folder(tmp_path, tmp_path / "out" / "labels.csv", [FSANET], models_dir=PEER_MODELS)
    assert summary["images"] == 2 and summary["no_face"] == 1 and summary["rows"] == 1
    row = next(csv.DictReader(open(tmp_path / "out" / "labels.csv")))
    assert row["path"] == "astronaut.jpg" and abs(float(row["yaw"])) < 45


def test_label_command_without_votes_is_a_clear_error(tmp_path, pool_root, capsys):
    from edgepose.cli import main

    root = _mini_pool(pool_root, tmp_path / "pool", 3, flip_coarse=False)
    assert main(["label", "--index", str(root), "--out", str(tmp_path / "l.csv")]) == 2
    assert "no votes" in capsys.readouterr().err


def test_vote_weights_from_the_command_line(tmp_path, pool_root, capsys):
    from edgepose.cli import main

    root = _mini_pool(pool_root, tmp_path / "pool", 12, flip_coarse=False)
    base = ["label", "--index", str(root), "--index-votes", "fused,mp_trusted", "--no-coarse-filter", "--max-spread", "90"]
    outs = {}
    for w in ("0", "1", "9"):
        outs[w] = tmp_path / f"w{w}.csv"
        assert main(base + ["--vote-weight", f"mp_trusted={w}", "--out", str(outs[w])]) == 0
        assert f'"mp_trusted": {float(w)}' in capsys.readouterr().out
    rows = {w: list(csv.DictReader(f.read_text().splitlines())) for w, f in outs.items()}
    both = [i for i, r in enumerate(rows["1"]) if r["mp_trusted_yaw"] and r["fused_yaw"]]
    assert both  # near-frontal rows with a trusted Face Mesh vote
    for i in both:
        fused, mesh = (np.array([float(rows["1"][i][f"{n}_{a}"]) for a in ("yaw", "pitch", "roll")])
                       for n in ("fused", "mp_trusted"))
        got = {w: np.array([float(rows[w][i][a]) for a in ("yaw", "pitch", "roll")]) for w in rows}
        np.testing.assert_allclose(got["0"], fused, atol=0.02)  # weight 0: the Face Mesh vote is ignored
        assert np.abs(got["9"] - mesh).sum() <= np.abs(got["1"] - mesh).sum() + 0.03
    for bad in ("mp_trusted", "mp_trusted=-1", "mp_trusted=nan", "=2"):
        assert main(base + ["--vote-weight", bad, "--out", str(tmp_path / "x.csv")]) == 2
        assert "give NAME=VALUE" in capsys.readouterr().err
    assert main(base + ["--vote-weight", "whenet=2", "--out", str(tmp_path / "x.csv")]) == 2
    assert "vote weight for whenet, which is not a vote here" in capsys.readouterr().err


def test_a_vote_with_a_yaw_bound_counts_only_inside_it():
    from edgepose.data_engine import _gate_votes

    # rows: frontal, large yaw, and a row the unbounded vote misses (NaN): the bounded vote stays there
    votes = np.array([[[10.0, 0, 0], [14.0, 0, 0]], [[70.0, 5, 0], [50.0, 5, 0]], [[np.nan] * 3, [20.0, 0, 0]]])
    gated = _gate_votes(votes, np.ones(2), [np.inf, 60.0])
    np.testing.assert_array_equal(gated[[0, 2]], votes[[0, 2]])
    assert np.isfinite(gated[1, 0]).all() and np.isnan(gated[1, 1]).all()
    angles, _ = consensus(gated)
    assert abs(angles[0, 0] - 12) < 0.2 and abs(angles[1, 0] - 70) < 0.01
    with pytest.raises(ConfigError, match="leave at least one unbounded"):
        _gate_votes(votes, np.ones(2), [30.0, 60.0])


def test_vote_yaw_bound_from_the_command_line(tmp_path, pool_root, capsys):
    from edgepose.cli import main

    root = _mini_pool(pool_root, tmp_path / "pool", 12, flip_coarse=False)
    base = ["label", "--index", str(root), "--index-votes", "fsa,whenet", "--no-coarse-filter", "--max-spread", "90"]
    out = tmp_path / "bounded.csv"
    assert main(base + ["--vote-max-yaw", "whenet=17", "--out", str(out)]) == 0
    assert '"vote_max_yaw": {\n    "whenet": 17.0' in capsys.readouterr().out
    rows = list(csv.DictReader(out.read_text().splitlines()))
    seen = set()
    for r in rows:
        fsa = np.array([float(r[f"fsa_{a}"]) for a in ("yaw", "pitch", "roll")])
        got = np.array([float(r[a]) for a in ("yaw", "pitch", "roll")])
        if abs(fsa[0]) > 17:  # beyond the bound only FSA-Net decides
            np.testing.assert_allclose(got, fsa, atol=0.02)
            assert r["votes"] == "1" and r["whenet_yaw"]  # one vote counted; WHENet's own output still recorded
            seen.add("outside")
        else:
            seen.add("inside")
    assert seen == {"inside", "outside"}
    assert main(base + ["--vote-max-yaw", "mp=17", "--out", str(tmp_path / "x.csv")]) == 2
    assert "vote yaw bound for mp, which is not a vote here" in capsys.readouterr().err
    assert main(base + ["--vote-max-yaw", "whenet", "--out", str(tmp_path / "x.csv")]) == 2
    assert "--vote-max-yaw 'whenet': give NAME=VALUE" in capsys.readouterr().err


def test_mp_trusted_vote_is_face_mesh_where_the_fusion_rule_trusts_it_fully(pool_root):
    from edgepose.datasets.faces_pool import FusionRule, read_pool_index, trusted_mp

    table = read_pool_index(pool_root)
    rule = FusionRule()
    got = trusted_mp(table, rule)
    teacher_yaw = np.abs((table.fsa[:, 0] + np.clip(table.whenet[:, 0], -99, 99)) / 2)
    fit = np.nan_to_num(table.mp_fit, nan=9.0)
    want = np.isfinite(table.mp[:, 0]) & (fit <= rule.mp_max_fit) & (teacher_yaw <= rule.mp_full_below)
    assert want.any() and (~want).any()
    np.testing.assert_array_equal(np.isfinite(got[:, 0]), want)
    np.testing.assert_array_equal(got[want], table.mp[want])
    assert np.nanmax(np.abs(got[:, 0])) < 60  # near-frontal only: Face Mesh fails on profiles


def test_stored_votes_are_reused_and_a_vote_can_skip_a_source(tmp_path, pool_root, capsys):
    """A consensus can be rebuilt from an earlier labels file's vote columns (no teacher rerun), and one vote can be
    left out on one pool source's rows (a teacher whose crop does not fit that source's boxes)."""
    from edgepose.cli import main

    root = _mini_pool(pool_root, tmp_path / "pool", 12, flip_coarse=False)
    first = tmp_path / "first.csv"
    assert main(["label", "--index", str(root), "--teacher", FSANET, "--models-dir", PEER_MODELS, "--index-votes",
                 "fused", "--no-coarse-filter", "--max-spread", "90", "--out", str(first)]) == 0
    capsys.readouterr()
    rows = list(csv.DictReader(first.read_text().splitlines()))
    again = tmp_path / "again.csv"
    assert main(["label", "--index", str(root), "--index-votes", "fused", "--no-coarse-filter", "--max-spread", "90",
                 "--no-flip", "--stored-votes", f"{first}=fsanet", "--out", str(again)]) == 0
    reused = list(csv.DictReader(again.read_text().splitlines()))
    for a, b in zip(rows, reused):  # same votes, same consensus (stored votes carry no flip gap, so spread may differ)
        assert [a[f"fsanet_{k}"] for k in ("yaw", "pitch", "roll")] == [b[f"fsanet_{k}"] for k in ("yaw", "pitch", "roll")]
        assert all(abs(float(a[k]) - float(b[k])) <= 0.011 for k in ("yaw", "pitch", "roll"))
    source = csv.DictReader((root / "index.csv").read_text().splitlines()).__next__()["source"]
    skipped = tmp_path / "skipped.csv"
    assert main(["label", "--index", str(root), "--index-votes", "fused", "--no-coarse-filter", "--max-spread", "90",
                 "--stored-votes", f"{first}=fsanet", "--vote-skip-source", f"fsanet={source}",
                 "--out", str(skipped)]) == 0
    out = list(csv.DictReader(skipped.read_text().splitlines()))
    sources = [r["source"] for r in csv.DictReader((root / "index.csv").read_text().splitlines())]
    for r, s in zip(out, sources):
        if s == source:
            assert r["fsanet_yaw"] == "" and r["votes"] == "1"
    for bad, message in ((["--stored-votes", f"{first}=nope"], "has no vote column"),
                         (["--stored-votes", f"{first}=fsanet", "--vote-skip-source", "fsanet=mars"], "does not have"),
                         (["--vote-skip-source", "fsanet"], "give NAME=VALUE")):
        assert main(["label", "--index", str(root), "--index-votes", "fused", "--out", str(tmp_path / "x.csv")] + bad) == 2
        assert message in capsys.readouterr().err


def test_a_labels_file_without_its_columns_or_of_another_pool_is_refused(tmp_path):
    from edgepose.datasets.labels_csv import read_labels, read_vote_columns
    from edgepose.errors import ConfigError

    bad = tmp_path / "bad.csv"
    bad.write_text("file,yaw\na.jpg,1\n")
    with pytest.raises(ConfigError, match=r"has no column\(s\) \['path'"):
        read_labels(bad)
    odd = tmp_path / "odd.csv"
    odd.write_text("path,yaw,pitch,roll,confidence,spread,votes,keep,t_yaw,t_pitch,t_roll\n"
                   "x/a.jpg,1,2,three,1,0,1,1,1,2,3\n")
    with pytest.raises(ConfigError, match="line 2: roll = 'three' is not a number"):
        read_labels(odd)
    odd.write_text("path,yaw,pitch,roll,confidence,spread,votes,keep\nx/a.jpg,,2,3,1,0,1,1\n")
    with pytest.raises(ConfigError, match="line 2: a kept row has no yaw"):  # not a NaN label to train on
        read_labels(odd)
    odd.write_text("path,yaw,pitch,roll,confidence,spread,votes,keep,t_yaw,t_pitch,t_roll\n"
                   "x/a.jpg,1,2,3,1,0,1,1,1,2,3\n")
    with pytest.raises(ConfigError, match="shares no row with the pool"):
        read_vote_columns(odd, ["t"], ["pool/b.jpg", "pool/c.jpg"])
    assert read_vote_columns(odd, ["t"], ["x/a.jpg"])["t"].tolist() == [[1.0, 2.0, 3.0]]


def test_flip_tta_per_teacher(pool_root, tmp_path, capsys):
    """--vote-no-flip runs one teacher on the plain crop while another keeps its mirrored vote: the first teacher's
    column equals a run without any flip, the second's a run with flip everywhere."""
    from edgepose.cli import main

    from .conftest import SHARED

    root = _mini_pool(pool_root, tmp_path / "pool", 6, flip_coarse=False)
    peers = str(SHARED / "models" / "peers")
    base = ["label", "--index", str(root), "--teacher", FSANET, "--teacher", "benchmarks/peers/3ddfa_v2.json",
            "--models-dir", peers, "--no-coarse-filter", "--max-spread", "90"]
    runs = {"mixed": ["--vote-no-flip", "fsanet"], "none": ["--no-flip"], "all": []}
    rows = {}
    for name, extra in runs.items():
        out = tmp_path / f"{name}.csv"
        assert main(base + extra + ["--out", str(out)]) == 0
        rows[name] = list(csv.DictReader(out.read_text().splitlines()))
    assert '"fsanet": false' in capsys.readouterr().out

    def column(name, vote):
        return np.array([[float(r[f"{vote}_{a}"]) for a in ("yaw", "pitch", "roll")] for r in rows[name]])

    np.testing.assert_allclose(column("mixed", "fsanet"), column("none", "fsanet"), atol=0.011)
    np.testing.assert_allclose(column("mixed", "3ddfa_v2"), column("all", "3ddfa_v2"), atol=0.011)
    assert np.abs(column("all", "3ddfa_v2") - column("none", "3ddfa_v2")).max() > 0.05  # flip TTA changes a vote
    assert main(base + ["--vote-no-flip", "whenet", "--out", str(tmp_path / "x.csv")]) == 2
    assert "no teacher here" in capsys.readouterr().err
