"""Every numeric recipe field declares its range, every named-choice field its names, and a value outside them is a
ConfigError before anything is written."""
import dataclasses
import math

import pytest

from edgepose.cli import main
from edgepose.errors import ConfigError
from edgepose.train.recipe import Recipe, load_recipe, recipe_from_yaml

RECIPE = "recipes/student_mbv3l_128.yaml"


def numeric_fields():
    for section in dataclasses.fields(Recipe):
        if section.default_factory is dataclasses.MISSING:  # name: a string
            continue
        for f in dataclasses.fields(section.default_factory()):
            if f.type in ("int", "float", int, float):
                yield f"{section.name}.{f.name}", f


@pytest.mark.parametrize("key, field", list(numeric_fields()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_numeric_field_has_a_range_that_is_enforced(key, field):
    rng = field.metadata.get("range")
    assert rng is not None, f"{key} declares no range"
    bad = [rng.lo - 1 if math.isfinite(rng.lo) else None, rng.hi + 1 if math.isfinite(rng.hi) else None, ".nan"]
    for value in [b for b in bad if b is not None]:
        with pytest.raises(ConfigError, match=rf"'{key}' (= .* is out of range: must be|must be a whole number)"):
            recipe_from_yaml("", [f"{key}={value}"])
    assert rng.holds(field.default)


def choice_fields():
    for section in dataclasses.fields(Recipe):
        if section.default_factory is not dataclasses.MISSING:
            for f in dataclasses.fields(section.default_factory()):
                if "choices" in f.metadata:
                    yield f"{section.name}.{f.name}", f


@pytest.mark.parametrize("key, field", list(choice_fields()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_named_choice_is_enforced(key, field):
    assert field.default in field.metadata["choices"]
    for choice in field.metadata["choices"]:
        recipe_from_yaml("", [f"{key}={choice}"])
    with pytest.raises(ConfigError, match=rf"'{key}' = 'nonsense' is not one of "):
        recipe_from_yaml("", [f"{key}=nonsense"])


def test_the_fixed_name_settings_declare_their_names():
    assert {k for k, _ in choice_fields()} == {"train.init_match", "train.select_by", "qat.preset", "data.crop_protocol"}


@pytest.mark.parametrize("override, match", [
    ("train.epochs=0", r"'train.epochs' = 0 .*>= 1"), ("train.epochs=-3", "train.epochs"),
    ("train.batch_size=0", r"'train.batch_size' = 0"), ("train.lr=-0.001", r"'train.lr' = -0.001 .*> 0"),
    ("data.holdout=2", r"'data.holdout' = 2.0 .*> 0 and < 1"), ("data.holdout=0", "data.holdout"),
    ("train.epochs=2.5", "whole number"), ("train.curriculum=[[0, 500]]", "curriculum"),
    ("train.select_by=holdout_view", r"'train.select_by' = 'holdout_view' is not one of .* Did you mean 'holdout_views'"),
    ("train.init_match=align", r"'train.init_match' = 'align' is not one of exact, aligned\. Did you mean 'aligned'"),
    ("qat.preset=fast", r"'qat.preset' = 'fast' is not one of performance, mixed\.$"),
])
def test_bad_training_values_are_refused_and_nothing_is_written(tmp_path, capsys, override, match):
    with pytest.raises(ConfigError, match=match):
        load_recipe(RECIPE, [override])
    out = tmp_path / "run"
    assert main(["train", RECIPE, "--set", override, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and any(w in err for w in ("out of range", "curriculum", "whole number",
                                                                  "is not one of")), err
    assert not out.exists()


def test_train_checks_a_recipe_built_in_python(tmp_path):
    pytest.importorskip("torch")
    from edgepose.train.trainer import train

    recipe = load_recipe(RECIPE)
    bad = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, batch_size=0))
    with pytest.raises(ConfigError, match="train.batch_size"):
        train(bad, tmp_path / "run")
    assert not (tmp_path / "run").exists()
