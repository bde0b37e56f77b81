"""Ship the faster precision: an int8 artifact timed against the fp32 artifact of the same weights on this machine.

Whether int8 pays depends on the network, the quantizer and the CPU (on this project's x86 host the MobileNetV3-Small
default's static int8 graph runs at about 0.8x its fp32 speed in ONNX Runtime, its dynamic int8 of the fully
connected layers at about 1.1x; ReLU networks on ARM gain from static int8). A platform that sets
`int8_if_faster` (cpu-int8) exports int8 only where it measures faster here; otherwise the fp32 artifact ships and
the manifest's `source.speed_choice` records both timings and how to force int8.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..backends import create_backend
from ..evaluation.bench import environment, interleaved_medians
from ..manifest import InputSpec

ROUNDS = 5
CALLS = 100


@dataclass(frozen=True)
class SpeedChoice:
    """The outcome of one interleaved timing. p50s: median over rounds of each round's median call (ms, batch 1).
    int8_over_fp32: median over rounds of the per-round ratio of the two (> 1: int8 is slower).
    host: the CPU model and its SIMD flags that matter for int8 (the choice holds for that kind of CPU)."""

    shipped: str
    int8_p50_ms: float
    fp32_p50_ms: float
    int8_over_fp32: float
    rounds: int
    calls: int
    host: str

    def record(self, force: str) -> dict:
        """The manifest's `source.speed_choice`: the figures, the rule, and the command that forces int8."""
        return {**asdict(self), "batch": 1, "threads": 1,
                "rule": "int8 ships only if the median over rounds of its per-round time ratio to fp32 is at most "
                        "1 on the exporting machine",
                "force_int8": force}


def choose_faster(int8: tuple[Path, InputSpec], fp32: tuple[Path, InputSpec], backend: str, options: dict,
                  rounds: int = ROUNDS, calls: int = CALLS) -> SpeedChoice:
    """Time two artifacts (path, its input spec) run by `backend` on one thread, batch 1 (the per-face case), in
    interleaved rounds, and say which ships: int8 when the median per-round ratio int8 / fp32 is at most 1."""
    engines = []
    try:
        fns = {}
        for name, (path, spec) in (("int8", int8), ("fp32", fp32)):
            engine = create_backend(backend)
            engines.append(engine)
            engine.load(str(path), {**options, "threads": 1})
            feed = {spec.name: spec.dummy(1)}
            fns[name] = lambda engine=engine, feed=feed: engine.run(feed)
        medians = interleaved_medians(fns, calls, rounds)
    finally:
        for engine in engines:
            engine.close()
    ratio = float(np.median(medians["int8"] / medians["fp32"]))
    env = environment()
    return SpeedChoice(shipped="int8" if ratio <= 1.0 else "fp32", int8_p50_ms=float(np.median(medians["int8"])),
                       fp32_p50_ms=float(np.median(medians["fp32"])), int8_over_fp32=ratio, rounds=rounds,
                       calls=calls, host=" ".join([env["cpu"], *env["flags"]]))
