"""`edgepose average`: one checkpoint whose weights are the uniform average of several (a "model soup").

Members must be fine-tunes of one lineage (same backbone, head, width and input size, e.g. successive rounds of a
ladder), where averaging weights lands in the same basin; the average is one network, so it costs nothing at inference.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ..bundle import model_name
from ..errors import ConfigError
from .recipe import check_recipe_name, recipe_from_yaml, recipe_to_yaml
from .checkpoint import read_checkpoint
from .trainer import release_state, save_checkpoint


def average_checkpoints(paths: list[str], out: str | Path, name: str = "") -> Path:
    """Write the uniform average of the EMA (else raw) weights of `paths` to `out`, atomically.

    The recipe is the last member's, renamed to `name` (default: the file stem of `out`); `averaged_from` records the
    members' paths and recipe names (by their run folder, runs/<recipe>/best.pt, or file stem), which exports carry
    into their manifests and `edgepose card` follows.

    Raises:
        ConfigError: fewer than two members, a missing or quantization-aware checkpoint, or members of different
            architectures.
    """
    if len(paths) < 2:
        raise ConfigError("averaging needs at least two checkpoints")
    check_recipe_name(name or Path(out).stem, "--name (default: the --out file stem)")  # before the work, not at export
    states, recipes = [], []
    for p in paths:
        if not Path(p).is_file():
            raise ConfigError(f"no checkpoint at '{p}'; give .pt files written by edgepose train")
        state = read_checkpoint(p)
        if "nncf_config" in state:
            raise ConfigError(f"'{p}' is a quantization-aware checkpoint; average the fp32 checkpoints, then run QAT")
        states.append(state["ema"] if "ema" in state else state["model"])
        recipes.append(recipe_from_yaml(state["recipe"], where=f"recipe inside '{p}'"))
    for p, r in zip(paths[1:], recipes[1:]):
        if r.model != recipes[0].model:
            raise ConfigError(f"'{p}' is a different network ({r.model}) from '{paths[0]}' ({recipes[0].model}); "
                              "only checkpoints of one architecture can be averaged")
    keys = list(states[0])
    if any(list(s) != keys for s in states[1:]):
        raise ConfigError("the checkpoints hold different parameter sets; average checkpoints of one architecture")
    avg = {k: (sum(s[k].double() for s in states) / len(states)).to(states[0][k].dtype)
           if states[0][k].is_floating_point() else states[0][k].clone() for k in keys}
    out = Path(out)
    recipe = dataclasses.replace(recipes[-1], name=name or out.stem)
    members = [{"checkpoint": str(p), "recipe": model_name(p)} for p in paths]
    save_checkpoint(out, release_state(avg, recipe_to_yaml(recipe), {}, 0, 0, averaged_from=members))
    return out
