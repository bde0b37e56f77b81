"""`edgepose card`: the model card comes from a bench JSON, the bundles' manifests and the recipes."""
from __future__ import annotations

import json

import pytest

from edgepose.cli import main
from edgepose.errors import ConfigError


def _row(model, platform, mae, p50):
    return {"model": model, "platform": platform, "precision": "fp32", "status": "✅ ran", "size MB": 6.1, "MAE": mae,
            "yaw": mae - 1, "pitch": mae + 1, "roll": mae, "|yaw| 60-99": 3 * mae, "AUC@5 %": 70.0,
            "pose p50 ms": p50, "× first": p50 / 0.8}


def test_card_tables_every_measured_row_and_names_recipes_and_terms(tmp_path):
    bench = {"environment": {"cpu": "TestCPU", "cores": 2}, "threads": 1, "rounds": 5,
             "rows": [_row("default", "cpu", 4.21, 0.8), _row("fsanet", "cpu", 5.19, 1.6),
                      {"model": "default", "platform": "jetson", "status": "❌ unavailable: no GPU"}]}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(bench))
    assert main(["card", "--bench", str(path), "--out", str(tmp_path / "CARD.md")]) == 0
    card = (tmp_path / "CARD.md").read_text()
    assert "| default | cpu | fp32 | 6.1 | 4.21 |" in card and "| fsanet | cpu | fp32 | 6.1 | 5.19 |" in card
    assert "jetson" not in card.split("## Artifacts")[0]  # only measured rows are tabled
    assert "TestCPU" in card and "non-commercial" in card and "- `recipes/" in card
    # the card says how the shipped checkpoint was chosen and what dev did in it, and pastes no recipe bodies
    chosen = card.split("## How it was chosen")[1]
    assert "pool holdout" in chosen and "aflw2000-dev" in chosen and "decided nothing" in chosen
    assert "never used for training, tuning or checkpoint choice" not in card and "name: " not in card
    # a bundle whose export timed int8 against fp32 says which shipped and why, from its manifest
    from edgepose.bundle import bundled_dir

    choice = json.loads((bundled_dir("default-cpu-int8") / "manifest.json").read_text())["source"]["speed_choice"]
    row = next(line for line in card.splitlines() if line.startswith("| default-cpu-int8 |"))
    assert (f"took {choice['int8_over_fp32']:.2f}x the fp32 time" in row) == (choice["shipped"] == "fp32")


def test_the_provenance_file_is_the_weights_own_and_must_say_how_chosen_and_terms(tmp_path):
    """A card for someone else's weights never borrows the default's story: it pastes their provenance file."""
    from importlib.resources import files

    from edgepose.evaluation.model_card import build_card

    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"rows": [_row("default", "cpu", 4.21, 0.8)]}))
    bundles = files("edgepose") / "bundles"
    own = tmp_path / "mine.md"
    own.write_text("## How it was chosen\n\nlowest loss on our holdout\n\n## Data and terms\n\nour own photos, CC-BY\n")
    card = build_card(bench, bundles, provenance=own)
    assert card.rstrip().endswith("our own photos, CC-BY") and "lowest loss on our holdout" in card
    assert "3DDFA_V2 voting" not in card
    own.write_text("## How it was chosen\n\nlowest loss\n")
    with pytest.raises(ConfigError, match="lacks the heading.*Data and terms"):
        build_card(bench, bundles, provenance=own)
    assert main(["card", "--bench", str(bench), "--out", str(tmp_path / "C.md"),
                 "--provenance", str(tmp_path / "none.md")]) == 2
    assert not (tmp_path / "C.md").exists()


def test_artifact_rows_say_how_int8_was_made_or_why_fp32_shipped():
    from edgepose.evaluation.model_card import _quantization

    timed = {"shipped": "fp32", "int8_over_fp32": 1.31, "int8_p50_ms": 1.2, "fp32_p50_ms": 0.9}
    assert _quantization({"speed_choice": timed}).startswith("none: its int8 graph took 1.31x the fp32 time")
    won = {"speed_choice": {**timed, "shipped": "int8", "int8_over_fp32": 0.8}, "quantization": "post-training: QDQ"}
    assert _quantization(won) == "post-training: QDQ" and _quantization({}) == "-"


def test_card_without_a_default_row_is_an_error(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"rows": [_row("fsanet", "cpu", 5.19, 1.6)]}))
    from importlib.resources import files

    from edgepose.evaluation.model_card import build_card

    with pytest.raises(ConfigError, match="no measured row of the default model"):
        build_card(path, files("edgepose") / "bundles")


def test_recipe_chain_follows_warm_starts_and_teachers(tmp_path):
    from edgepose.evaluation.model_card import _recipe_chain

    (tmp_path / "stage2.yaml").write_text("# stage two\nname: stage2\ntrain:\n  init: runs/stage1/last.pt\n")
    (tmp_path / "stage1.yaml").write_text("# stage one\nname: stage1\ntrain:\n  init: weights/base.pt\n"
                                          "distill:\n  teacher: runs/teacher/last.pt\n")
    (tmp_path / "base.yaml").write_text("# the base\nname: base\n")
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "teacher.yaml").write_text("# the teacher\nname: teacher\n")
    lines = _recipe_chain([tmp_path, tmp_path / "more"], "stage2")
    t = tmp_path.as_posix()
    assert lines == [f"- `{t}/stage2.yaml`: stage two", f"- `{t}/stage1.yaml`: stage one",
                     f"- `{t}/base.yaml`: the base", f"- `{t}/more/teacher.yaml`: the teacher"]


def test_recipe_chain_names_a_start_that_has_no_recipe(tmp_path):
    from edgepose.evaluation.model_card import _recipe_chain

    (tmp_path / "round.yaml").write_text("# one round\nname: round\ntrain:\n  init: weights/soup.pt\n")
    lines = _recipe_chain([tmp_path], "round")
    assert lines[0] == f"- `{tmp_path.as_posix()}/round.yaml`: one round"
    assert lines[1].startswith("- `weights/soup.pt`: no recipe of that name in ") and len(lines) == 2
    assert _recipe_chain([tmp_path], "gone")[0].startswith("- `gone`: no recipe of that name")  # a caller's name too
    (tmp_path / "two.yaml").write_text("# two\nname: two\ntrain:\n  init: weights/soup.pt\n"
                                       "distill:\n  teacher: weights/soup.pt\n")
    assert len(_recipe_chain([tmp_path], "two")) == 2  # one line per parent file, however often it is named


def test_card_reproduces_the_bench_with_its_own_extra_models(tmp_path):
    bench = {"rows": [_row("default", "cpu", 4.21, 0.8), _row("3ddfa_v2", "cpu", 4.28, 0.9)],
             "models": ["benchmarks/peers/3ddfa_v2.json"]}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(bench))
    assert main(["card", "--bench", str(path), "--out", str(tmp_path / "CARD.md")]) == 0
    reproduce = next(ln for ln in (tmp_path / "CARD.md").read_text().splitlines() if ln.startswith("Reproduce"))
    assert "--model benchmarks/peers/3ddfa_v2.json --models-dir" in reproduce and "fsanet" not in reproduce
    assert "--platform" not in reproduce  # no platforms recorded: the bench ran them all
    bench.update(platforms=["cpu", "android"])
    del bench["models"]  # a file from before the bench recorded its models: the two peers it always ran then
    path.write_text(json.dumps(bench))
    assert main(["card", "--bench", str(path), "--out", str(tmp_path / "CARD.md")]) == 0
    reproduce = next(ln for ln in (tmp_path / "CARD.md").read_text().splitlines() if ln.startswith("Reproduce"))
    assert ("--platform cpu,android --model benchmarks/peers/fsanet.json --model benchmarks/peers/whenet.json"
            in reproduce)
