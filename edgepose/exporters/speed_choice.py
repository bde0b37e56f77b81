"""Ship the faster precision: an int8 artifact timed against the fp32 artifact of the same weights on this machine.

Whether int8 pays depends on the network and the CPU (on this project's x86 host the MobileNetV3-Small default's
int8 graph runs at about 0.8x its fp32 speed in ONNX Runtime; ReLU networks on ARM gain). A platform that sets
`int8_if_faster` (cpu-int8) exports int8 only where it measures faster here; otherwise the fp32 artifact ships and
the manifest's `source.speed_choice` records both timings and how to force int8.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..backends import create_backend
from ..evaluation.bench import environment, sample_calls

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
    threads: int
    host: str

    def record(self, force: str) -> dict:
        """The manifest's `source.speed_choice`: the figures, the rule, and the command that forces int8."""
        return {**asdict(self), "batch": 1,
                "rule": "int8 ships only if its p50 is not above the fp32 artifact's on the exporting machine",
                "force_int8": force}


def time_interleaved(artifacts: dict[str, Path], backend: str, options: dict, feed: np.ndarray,
                     rounds: int = ROUNDS, calls: int = CALLS) -> dict[str, list[float]]:
    """Per-round median milliseconds of each artifact, run by `backend` in turn (the order reversed every other
    round, so a drift of a shared machine hits both alike)."""
    engines = {}
    try:
        for name, path in artifacts.items():
            engine = create_backend(backend)
            engine.load(str(path), options)
            engines[name] = (engine, {engine.io().inputs[0].name: feed})
        medians: dict[str, list[float]] = {name: [] for name in artifacts}
        order = list(engines)
        for r in range(rounds):
            for name in (order if r % 2 == 0 else order[::-1]):
                engine, inputs = engines[name]
                medians[name].append(float(np.median(sample_calls(lambda: engine.run(inputs), calls,
                                                                  warmup=10 if r == 0 else 2))))
        return medians
    finally:
        for engine, _ in engines.values():
            engine.close()


def choose_faster(int8: Path, fp32: Path, backend: str, options: dict, feed: np.ndarray,
                  rounds: int = ROUNDS, calls: int = CALLS) -> SpeedChoice:
    """Time the two artifacts on one thread, batch 1 (the per-face case), and say which ships: int8 when it is not
    slower, else fp32."""
    medians = time_interleaved({"int8": int8, "fp32": fp32}, backend, {**options, "threads": 1}, feed, rounds, calls)
    ratio = float(np.median(np.asarray(medians["int8"]) / np.asarray(medians["fp32"])))
    env = environment()
    return SpeedChoice(shipped="int8" if ratio <= 1.0 else "fp32", int8_p50_ms=float(np.median(medians["int8"])),
                       fp32_p50_ms=float(np.median(medians["fp32"])), int8_over_fp32=ratio, rounds=rounds,
                       calls=calls, threads=1, host=" ".join([env["cpu"], *env["flags"]]))
