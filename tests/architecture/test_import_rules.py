"""The import rules of docs/ARCHITECTURE.md, read from the source with `ast` (every import, including
the ones inside functions), so a change that breaks one fails here and not in a Lambda or a container."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = {  # import name of a file's package -> folder
    "harness": ROOT / "harness",
    "model": ROOT / "model",
    "monitor": ROOT / "monitor",
    "bench": ROOT / "bench",
    "scones_common": ROOT / "layers" / "common" / "scones_common",
}


def module_name(path: Path) -> str:
    for package, folder in SOURCE_ROOTS.items():
        if path.is_relative_to(folder):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    if path.is_relative_to(ROOT / "functions"):
        return "functions." + path.relative_to(ROOT / "functions").with_suffix("").as_posix().replace(
            "/", "."
        )
    raise ValueError(path)


def source_files() -> list[Path]:
    files = [f for folder in SOURCE_ROOTS.values() for f in folder.rglob("*.py")]
    return sorted(files + list((ROOT / "functions").rglob("app.py")))


def imports(path: Path) -> Iterator[str]:
    """Every module a file imports, absolute, wherever the import statement is."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


GRAPH = {module_name(path): sorted(set(imports(path))) for path in source_files()}


def within(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def offenders(
    importers: tuple[str, ...], imported: tuple[str, ...], allowed: tuple[str, ...] = ()
) -> list[str]:
    return [
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if within(module, *importers) and not within(module, *allowed)
        for target in targets
        if within(target, *imported)
    ]


def test_the_source_files_are_found() -> None:
    assert {"harness.cli", "harness.local.workflow", "harness.ops.execution", "model.inference"} <= set(GRAPH)
    assert "functions.classify_image.app" in GRAPH


RULES = {
    "only harness.local imports moto": (
        ("harness", "model", "monitor", "scones_common", "functions"),
        ("moto",),
        ("harness.local",),
    ),
    "only harness.cli imports click or rich": (
        ("harness", "model", "monitor", "scones_common", "functions"),
        ("click", "rich"),
        ("harness.cli",),
    ),
    "the Lambda code imports nothing of the tool": (
        ("functions", "scones_common"),
        ("harness", "model", "monitor", "bench", "matplotlib", "torch", "sagemaker"),
        (),
    ),
    "harness.ops never imports the local stand-ins, the CLI or the catalogue": (
        ("harness.ops",),
        ("harness.local", "harness.cli", "harness.reliability"),
        (),
    ),
    "harness.local never imports upward": (("harness.local",), ("harness.cli", "harness.reliability"), ()),
    "harness.reliability never imports the CLI": (("harness.reliability",), ("harness.cli",), ()),
    "the tool's base modules import no other harness module": (
        ("harness.aws", "harness.errors", "harness.samples"),
        ("harness.cli", "harness.local", "harness.ops", "harness.reliability", "model", "monitor"),
        (),
    ),
    "monitor imports neither harness nor model": (("monitor",), ("harness", "model"), ()),
    # model/ runs in SageMaker containers (training script mode, the inference handler) without harness/;
    # only its AWS-facing modules, which run on the user's machine, use the tool's session and errors.
    "model imports only harness.aws and harness.errors": (
        ("model",),
        ("harness.cli", "harness.local", "harness.ops", "harness.reliability", "harness.samples", "monitor"),
        (),
    ),
    "model code that runs in a container imports nothing of harness": (
        (
            "model.training",
            "model.serving",
            "model.inference",
            "model.evaluate",
            "model.metrics",
            "model.train",
        ),
        ("harness",),
        (),
    ),
    "torch only under model.training (and model.train, its entry point)": (
        ("harness", "model", "monitor", "scones_common", "functions"),
        ("torch",),
        ("model.training", "model.train"),
    ),
    "the SageMaker SDK only inside model.sagemaker_jobs": (
        ("harness", "model", "monitor", "scones_common", "functions"),
        ("sagemaker",),
        ("model.sagemaker_jobs",),
    ),
    "matplotlib only in the chart modules (the optional `monitor` extra)": (
        ("harness", "model", "monitor", "scones_common", "functions"),
        ("matplotlib",),
        ("monitor.charts", "model.evaluation_plots"),
    ),
    "nothing imports tests or bench": (
        ("harness", "model", "monitor", "scones_common", "functions"),
        ("tests", "bench"),
        (),
    ),
}


@pytest.mark.parametrize("rule", RULES)
def test_import_rule(rule: str) -> None:
    importers, imported, allowed = RULES[rule]
    assert offenders(importers, imported, allowed) == []


def unit(module: str) -> str:
    """The unit cycles are counted between: harness's subpackages and base modules, model's
    subpackages and modules, and each other top-level package whole."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] in ("harness", "model") else parts[0]


def test_no_import_cycles_between_units() -> None:
    edges: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        for target in targets:
            if target.split(".")[0] in {*SOURCE_ROOTS, "functions"} and unit(target) != unit(module):
                edges.setdefault(unit(module), set()).add(unit(target))
    cycles = []
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def test_the_command_and_the_stack_path_load_no_moto() -> None:
    # Given a fresh interpreter / When it imports every command and what `--stack` uses
    code = (
        "import sys, harness.cli, harness.ops.deployed, harness.ops.batch, harness.ops.load; "
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('moto', 'matplotlib', 'torch')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    # Then neither moto nor the heavy extras are loaded
    assert result.stdout.strip() == "[]"
