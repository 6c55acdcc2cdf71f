"""Build model.tar.gz for the SageMaker PyTorch inference container: the model files plus code/.

    python -m model.serving.package --output model.tar.gz [--model-dir model/artifacts]

Layout (what the container's toolkit reads, see docs/SAGEMAKER.md):

    metadata.json, classifier.onnx, ...    every file metadata.json names (keys ending in "_file")
    code/inference.py                      the entry point: re-exports model.serving.handler's functions
    code/requirements.txt                  the third-party packages the code imports, at pyproject.toml's pins
    code/model/..., code/scones_common/... the project modules the handler imports, at their package paths

The same inputs give the same bytes (sorted names, fixed times and owners), so the sha256 printed is
the artifact's identity.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import modulefinder
import re
import sys
import tarfile
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path, PurePosixPath
from typing import Any

from model.inference import DEFAULT_MODEL_DIR, METADATA_FILE, MODEL_FILE

REPO_ROOT = Path(__file__).resolve().parents[2]
# Where the handler's first-party imports are found: the repository and the shared Lambda layer.
SOURCE_ROOTS = (REPO_ROOT, REPO_ROOT / "layers" / "common")
HANDLER_MODULE = "model.serving.handler"
ENTRY_POINT = "inference.py"  # the toolkit's default SAGEMAKER_PROGRAM
CODE_DIR = "code"
# Imported by the handler, installed in the container image itself: never in requirements.txt.
CONTAINER_PROVIDED = frozenset({"sagemaker_inference"})
# A fixed time for every member (2024-01-01 UTC): the archive's bytes depend only on its contents.
FIXED_MTIME = 1_704_067_200

ENTRY_POINT_SOURCE = f'''"""The entry point the toolkit imports (SAGEMAKER_PROGRAM={ENTRY_POINT})."""

from {HANDLER_MODULE} import input_fn, model_fn, output_fn, predict_fn

__all__ = ["input_fn", "model_fn", "output_fn", "predict_fn"]
'''


class ModelPackageError(Exception):
    """The model directory or the code cannot make a valid model.tar.gz."""


@dataclass(frozen=True)
class ModelPackage:
    """What was written: the archive, its sha256, and its members with their sizes."""

    path: Path
    sha256: str
    members: dict[str, int]


def model_files(model_dir: Path) -> list[str]:
    """metadata.json and every file it names, checked against the sha256 it records for each."""
    try:
        metadata = json.loads((model_dir / METADATA_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelPackageError(f"no {METADATA_FILE} in {model_dir}") from None
    except (OSError, ValueError) as exc:
        raise ModelPackageError(f"cannot read {model_dir / METADATA_FILE}: {exc}") from exc
    named = dict(_named_files(metadata))
    named.setdefault(metadata.get("model_file", MODEL_FILE), None)
    for name, expected in sorted(named.items()):
        if PurePosixPath(name).name != name or name in ("", ".", ".."):
            raise ModelPackageError(f"{METADATA_FILE} names {name!r}, not a file of the model directory")
        path = model_dir / name
        if not path.is_file():
            raise ModelPackageError(f"{METADATA_FILE} names {name}, which is not in {model_dir}")
        if expected is not None and _sha256(path.read_bytes()) != expected:
            raise ModelPackageError(f"{path} does not match the sha256 in {METADATA_FILE}")
    return sorted({METADATA_FILE, *named})


def _named_files(node: Any) -> Iterator[tuple[str, str | None]]:
    """(file name, its recorded sha256 or None) for every "<x>_file" key, with "<x>_sha256" beside it."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if isinstance(key, str) and key.endswith("_file") and isinstance(value, str):
                digest = node.get(key.removesuffix("_file") + "_sha256")
                yield value, digest if isinstance(digest, str) else None
            else:
                yield from _named_files(value)
    elif isinstance(node, list):
        for item in node:
            yield from _named_files(item)


def code_files(handler_module: str = HANDLER_MODULE) -> dict[str, Path]:
    """The project modules the handler imports (transitively), by their path under code/."""
    found, _ = _imports(handler_module)
    return found


def requirements(handler_module: str = HANDLER_MODULE, pyproject: Path | None = None) -> list[str]:
    """`name==version` for each third-party distribution the shipped code imports, from pyproject's pins."""
    _, third_party = _imports(handler_module)
    pins = project_pins(pyproject or REPO_ROOT / "pyproject.toml")
    distributions = packages_distributions()
    lines = []
    for top_level in sorted(third_party):
        names = distributions.get(top_level)
        if not names:
            raise ModelPackageError(
                f"the serving code imports {top_level}, which no installed package provides"
            )
        for name in sorted({_canonical(n) for n in names}):
            if name not in pins:
                raise ModelPackageError(f"the serving code needs {name}, which pyproject.toml does not pin")
            lines.append(f"{name}=={pins[name]}")
    return sorted(set(lines))


def project_pins(pyproject: Path) -> dict[str, str]:
    """The `name==version` pins of pyproject.toml's [project].dependencies, by canonical name."""
    try:
        dependencies = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise ModelPackageError(f"cannot read the pinned dependencies of {pyproject}: {exc}") from exc
    pins = {}
    for requirement in dependencies:
        match = re.fullmatch(r"\s*([A-Za-z0-9._-]+)\s*(?:\[[^\]]*\])?\s*==\s*([^\s;]+)\s*", requirement)
        if match:
            pins[_canonical(match[1])] = match[2]
    return pins


def _depth(path: Path) -> int:
    return len(path.parts)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(handler_module: str) -> tuple[dict[str, Path], set[str]]:
    """First-party modules (arcname -> source) and third-party top-level names the handler needs."""
    finder = modulefinder.ModuleFinder(path=[str(root) for root in SOURCE_ROOTS])
    finder.import_hook(handler_module)
    found: dict[str, Path] = {}
    for module in finder.modules.values():
        filename = getattr(module, "__file__", None)  # None for built-in modules
        if filename is None:
            continue
        source = Path(filename).resolve()
        # The deepest root holding the file gives its import path (layers/common is inside the repository).
        root = max((r.resolve() for r in SOURCE_ROOTS if source.is_relative_to(r.resolve())), key=_depth)
        found[f"{CODE_DIR}/{source.relative_to(root).as_posix()}"] = source
    # Names the finder could not find under SOURCE_ROOTS: the standard library, the container's own
    # toolkit, and the third-party packages requirements.txt must bring.
    top_levels = {name.split(".", 1)[0] for name in finder.badmodules}
    third_party = top_levels - set(sys.stdlib_module_names) - CONTAINER_PROVIDED
    return found, third_party


def build_model_package(output: Path, model_dir: Path | None = None) -> ModelPackage:
    """Write model.tar.gz at `output` from `model_dir` (default model/artifacts) and this project's code."""
    directory = Path(model_dir or DEFAULT_MODEL_DIR).resolve()
    contents: dict[str, bytes] = {name: (directory / name).read_bytes() for name in model_files(directory)}
    for arcname, source in code_files().items():
        contents[arcname] = source.read_bytes()
    contents[f"{CODE_DIR}/{ENTRY_POINT}"] = ENTRY_POINT_SOURCE.encode("utf-8")
    contents[f"{CODE_DIR}/requirements.txt"] = ("\n".join(requirements()) + "\n").encode("utf-8")
    data = _deterministic_tar_gz(contents)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(data)
    return ModelPackage(output, _sha256(data), {name: len(body) for name, body in sorted(contents.items())})


def _deterministic_tar_gz(contents: Mapping[str, bytes]) -> bytes:
    directories = {str(parent) for name in contents for parent in PurePosixPath(name).parents} - {"."}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name in sorted(directories | set(contents)):
            info = tarfile.TarInfo(name)
            info.mtime = FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if name in contents:
                info.mode, info.size = 0o644, len(contents[name])
                archive.addfile(info, io.BytesIO(contents[name]))
            else:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
    compressed = io.BytesIO()
    # No file name and a zero time in the gzip header, so only the tar bytes decide the output.
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return compressed.getvalue()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model.serving.package", description="Build model.tar.gz for SageMaker."
    )
    parser.add_argument("--output", type=Path, default=Path("model.tar.gz"), help="default: ./model.tar.gz")
    parser.add_argument("--model-dir", type=Path, default=None, help=f"default: {DEFAULT_MODEL_DIR}")
    args = parser.parse_args(argv)
    try:
        package = build_model_package(args.output, args.model_dir)
    except ModelPackageError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    for name, size in package.members.items():
        print(f"{size:>12,}  {name}")
    print(f"{package.path}  sha256 {package.sha256}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
