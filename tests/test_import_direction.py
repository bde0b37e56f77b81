"""Dependencies point one way: an `ast` walk over edgepose/ (imports inside functions included) checks the arrows.

- The device half (everything outside the host half, except the CLI that dispatches to both) imports nothing from the
  host half (edgepose.train, edgepose.exporters, edgepose.data_engine) and no torch.
- Training imports neither the exporters nor the labeller (edgepose.data_engine).
- The exporters read checkpoints through edgepose.train.checkpoint, never the trainer or its data pipeline.
- Datasets are readers both halves use: they import nothing from the host half.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "edgepose"
HOST = ("edgepose.train", "edgepose.exporters", "edgepose.data_engine")
HEAVY = ("torch", "torchvision", "torchao", "nncf", "litert_torch", "ai_edge_torch")  # host-only packages
DISPATCH = {"edgepose.cli", "edgepose.__main__"}  # the one place that dispatches to both halves
TRAINER_INTERNALS = ("edgepose.train.trainer", "edgepose.train.pool_data", "edgepose.train.distill")


def _within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(module: str, source: str, is_package: bool = False) -> set[str]:
    """Every module `source` imports, anywhere in the file (function bodies included), as absolute names.
    `from X import y` counts as X and as X.y (y may be a submodule)."""
    package = module if is_package else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)
    return out


def wrong_arrows(sources: dict[str, tuple[str, bool]]) -> list[str]:
    """'importer -> imported (rule)' for every import that points the wrong way. `sources`: module name ->
    (source text, is a package __init__)."""
    bad = []
    for module, (source, is_package) in sorted(sources.items()):
        for target in sorted(imports(module, source, is_package)):
            if module in DISPATCH:
                continue
            if not _within(module, HOST):
                if _within(target, HOST) or _within(target, HEAVY):
                    bad.append(f"{module} -> {target} (device half imports the host half)")
            elif _within(module, ("edgepose.train",)):
                if _within(target, ("edgepose.exporters", "edgepose.data_engine")):
                    bad.append(f"{module} -> {target} (training imports the exporters or the labeller)")
            elif _within(module, ("edgepose.exporters",)):
                if _within(target, TRAINER_INTERNALS):
                    bad.append(f"{module} -> {target} (exporters reach into the trainer; use edgepose.train.checkpoint)")
    return bad


def package_sources(root: Path = PACKAGE) -> dict[str, tuple[str, bool]]:
    return {module_name(p, root): (p.read_text(), p.name == "__init__.py") for p in sorted(root.rglob("*.py"))}


def test_every_arrow_points_one_way():
    sources = package_sources()
    assert "edgepose.runtime" in sources and "edgepose.train.trainer" in sources  # the walk sees both halves
    assert wrong_arrows(sources) == []


def test_a_wrong_arrow_is_caught_even_inside_a_function():
    """The checker on synthetic modules: each rule fires, relative imports resolve, and allowed arrows pass."""
    sources = {
        "edgepose.bundle": ("def open_runtime():\n    from .exporters.export import export_bundle\n", False),
        "edgepose.video": ("import torch\n", False),
        "edgepose.train.distill": ("def f():\n    from ..exporters.onnx_export import write_onnx\n", False),
        "edgepose.train.pool_data": ("from .. import data_engine\n", False),
        "edgepose.exporters.export": ("from ..train.trainer import input_spec\n", False),
        # allowed: host imports device, exporters use the checkpoint module, the CLI dispatches to both
        "edgepose.exporters.onnx_export": ("from ..train.checkpoint import load_trained\nfrom ..manifest import InputSpec\n",
                                           False),
        "edgepose.data_engine": ("from .train.face_model import fit_pose\nfrom .runtime import Runtime\n", False),
        "edgepose.cli": ("def f():\n    from .train.trainer import train\n", False),
        "edgepose.detectors": ("from ..platform import DetectorConfig\n", True),
    }
    assert wrong_arrows(sources) == [
        "edgepose.bundle -> edgepose.exporters.export (device half imports the host half)",
        "edgepose.bundle -> edgepose.exporters.export.export_bundle (device half imports the host half)",
        "edgepose.exporters.export -> edgepose.train.trainer (exporters reach into the trainer; use "
        "edgepose.train.checkpoint)",
        "edgepose.exporters.export -> edgepose.train.trainer.input_spec (exporters reach into the trainer; use "
        "edgepose.train.checkpoint)",
        "edgepose.train.distill -> edgepose.exporters.onnx_export (training imports the exporters or the labeller)",
        "edgepose.train.distill -> edgepose.exporters.onnx_export.write_onnx (training imports the exporters or the "
        "labeller)",
        "edgepose.train.pool_data -> edgepose.data_engine (training imports the exporters or the labeller)",
        "edgepose.video -> torch (device half imports the host half)",
    ]
    assert imports("edgepose.detectors", "from ..platform import X\n", is_package=True) >= {"edgepose.platform"}
