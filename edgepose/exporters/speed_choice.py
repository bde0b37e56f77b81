"""Ship the faster precision: the int8 artifacts (one per candidate quantizer) timed against the fp32 artifact of the
same weights on this machine.

Whether int8 pays depends on the network, the quantizer and the CPU (on this project's x86 host the MobileNetV3-Small
default's static int8 graph runs at about 0.8x its fp32 speed in ONNX Runtime, its dynamic int8 of the fully
connected layers at about 1.1x; ReLU networks on ARM gain from static int8). A platform that sets
`int8_if_faster` (cpu-int8) exports int8 only where it measures faster here, and where its file lists several
quantizers, the fastest of them; otherwise the fp32 artifact ships. The manifest's `source.speed_choice` records every
timing and how to force the fastest int8.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
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
    int8_over_fp32: median over rounds of the per-round ratio of the two (> 1: int8 is slower); int8_* figures are
    the fastest int8's, `quantizer` names it, `candidates` has every int8 timed (quantizer -> p50_ms, over_fp32).
    host: the CPU model and its SIMD flags that matter for int8 (the choice holds for that kind of CPU)."""

    shipped: str
    int8_p50_ms: float
    fp32_p50_ms: float
    int8_over_fp32: float
    rounds: int
    calls: int
    host: str
    quantizer: str = ""
    candidates: dict = field(default_factory=dict)

    def record(self, force: str) -> dict:
        """The manifest's `source.speed_choice`: the figures, the rule, and the command that forces int8."""
        return {**asdict(self), "batch": 1, "threads": 1,
                "rule": "each int8 candidate is timed against fp32 in the same interleaved rounds; the one with the "
                        "lowest median per-round time ratio to fp32 ships if that ratio is at most 1 on the exporting "
                        "machine, else fp32 ships",
                "force_int8": force}


def choose_faster(int8: dict[str, tuple[Path, InputSpec]], fp32: tuple[Path, InputSpec], backend: str,
                  options: dict, rounds: int = ROUNDS, calls: int = CALLS) -> SpeedChoice:
    """Time the int8 artifacts (quantizer -> (path, its input spec)) and the fp32 one, run by `backend` on one thread,
    batch 1 (the per-face case), in the same interleaved rounds, and say which ships: the int8 with the lowest median
    per-round ratio to fp32 when that ratio is at most 1, else fp32."""
    if not int8 or "fp32" in int8:
        raise ValueError("choose_faster needs at least one int8 artifact, keyed by its quantizer (not 'fp32')")
    engines = []
    try:
        fns = {}
        for name, (path, spec) in [*int8.items(), ("fp32", fp32)]:
            engine = create_backend(backend)
            engines.append(engine)
            engine.load(str(path), {**options, "threads": 1})
            feed = {spec.name: spec.dummy(1)}
            fns[name] = lambda engine=engine, feed=feed: engine.run(feed)
        medians = interleaved_medians(fns, calls, rounds)
    finally:
        for engine in engines:
            engine.close()
    ratios = {q: float(np.median(medians[q] / medians["fp32"])) for q in int8}
    best = min(ratios, key=ratios.get)
    env = environment()
    return SpeedChoice(shipped="int8" if ratios[best] <= 1.0 else "fp32", int8_p50_ms=float(np.median(medians[best])),
                       fp32_p50_ms=float(np.median(medians["fp32"])), int8_over_fp32=ratios[best], rounds=rounds,
                       calls=calls, host=" ".join([env["cpu"], *env["flags"]]), quantizer=best,
                       candidates={q: {"p50_ms": float(np.median(medians[q])), "over_fp32": ratios[q]} for q in int8})
