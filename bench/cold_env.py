"""Scratch package folders for cold starts: the requirement files installed with `pip --target`, cached.

A function on Lambda sees its own folder (its code and the packages `sam build` installed next to it),
then the layer (/opt/python: scones_common and the layer's packages), then the runtime. The cold-start
child sees the same set, built here with the interpreter that runs it, so compiled wheels
(pydantic_core, Pillow) are the ones for that interpreter, on this machine's platform.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.local.template import PROJECT_ROOT

CACHE = PROJECT_ROOT / ".scones" / "bench"
COMPLETE = ".installed"  # written last: a folder without it is an interrupted install


@dataclass(frozen=True)
class Interpreter:
    executable: str
    version: str  # "3.13.0"
    source: str  # how it was chosen, printed with the table

    @property
    def tag(self) -> str:
        return f"py{self.version}-{platform.machine()}"


def _probe(command: str) -> tuple[str, str] | None:
    """The executable behind a command (a pyenv shim resolves here, not in every child) and its version."""
    try:
        done = subprocess.run(
            [command, "-c", "import sys, platform; print(sys.executable); print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.split()
    return (lines[0], lines[1]) if done.returncode == 0 and len(lines) == 2 else None


def choose_interpreter() -> Interpreter:
    """$SCONES_BENCH_PYTHON, else python3.13 (Lambda's runtime) when it runs here, else this interpreter."""
    wanted = os.environ.get("SCONES_BENCH_PYTHON")
    if wanted:
        found = _probe(wanted)
        if found is None:
            raise RuntimeError(f"SCONES_BENCH_PYTHON={wanted!r} does not run")
        return Interpreter(found[0], found[1], f"$SCONES_BENCH_PYTHON ({wanted})")
    found = _probe("python3.13")
    if found is not None:
        return Interpreter(found[0], found[1], "python3.13, as the template's Runtime")
    found = _probe(sys.executable)
    assert found is not None
    return Interpreter(found[0], found[1], "this interpreter (no python3.13 here; Lambda runs 3.13)")


def requirement_lines(path: Path) -> list[str]:
    return [
        line.split("#")[0].strip() for line in path.read_text().splitlines() if line.split("#")[0].strip()
    ]


def packages_folder(requirements: Path, interpreter: Interpreter) -> Path:
    """`pip install --target` of one requirements file, cached by interpreter version and content."""
    lines = requirement_lines(requirements)
    digest = hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()[:12]
    folder = CACHE / f"{interpreter.tag}-{digest}"
    if (folder / COMPLETE).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    if lines:
        with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".installing-") as scratch:
            target = Path(scratch, "packages")
            done = subprocess.run(
                [
                    interpreter.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-compile",  # the unmeasured warm-up round writes the bytecode caches
                    "--only-binary=:all:",
                    "--target",
                    str(target),
                    *lines,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"pip install --target for {requirements} failed:\n{done.stderr[-3000:]}")
            shutil.rmtree(folder, ignore_errors=True)
            target.rename(folder)
    else:
        folder.mkdir(exist_ok=True)
    (folder / COMPLETE).write_text("\n".join(lines) + "\n")
    return folder


def tree_bytes(folder: Path, skip: tuple[str, ...] = ("__pycache__",)) -> int:
    """Unzipped size of a folder's files, without bytecode caches that the benchmark itself wrote."""
    total = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in files:
            path = Path(root, name)
            if not path.is_symlink() and name != COMPLETE:
                total += path.stat().st_size
    return total
