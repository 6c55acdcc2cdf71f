"""scripts/check_native_arch.py, which `make sam-checks` runs on the build: an x86-64 shared object in
an arm64 function fails the check (it would fail at cold start on Lambda)."""

from __future__ import annotations

import importlib.util
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import PROJECT_ROOT

X86_64, AARCH64 = 62, 183


def load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_native_arch", PROJECT_ROOT / "scripts" / "check_native_arch.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def elf(machine: int, *, big_endian: bool = False) -> bytes:
    """The first 20 bytes of a 64-bit ELF file for `machine`, then padding."""
    order = ">" if big_endian else "<"
    ident = b"\x7fELF" + bytes([2, 2 if big_endian else 1, 1]) + bytes(9)
    return ident + struct.pack(f"{order}HH", 3, machine) + bytes(44)


@pytest.fixture
def build(tmp_path: Path) -> Path:
    (tmp_path / "Fn" / "PIL").mkdir(parents=True)
    (tmp_path / "Layer" / "python" / "lib").mkdir(parents=True)
    (tmp_path / "Fn" / "PIL" / "_imaging.cpython-313-aarch64-linux-gnu.so").write_bytes(elf(AARCH64))
    (tmp_path / "Layer" / "python" / "lib" / "libz.so.1.3").write_bytes(elf(AARCH64))
    (tmp_path / "Fn" / "notes.so.txt").write_text("not a shared object")  # named like one, not ELF
    return tmp_path


def test_an_aarch64_only_build_passes(build: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a build whose shared objects are all aarch64 / When checked / Then exit 0, and it counted them
    assert load_checker().main([str(build)]) == 0
    assert capsys.readouterr().out.strip() == "3 shared objects checked, 0 not aarch64"


@pytest.mark.parametrize("big_endian", [False, True])
def test_an_x86_64_shared_object_fails_naming_it(
    build: Path, capsys: pytest.CaptureFixture[str], big_endian: bool
) -> None:
    # Given one x86-64 extension module among aarch64 ones
    bad = build / "Fn" / "pydantic_core" / "_pydantic_core.cpython-313-x86_64-linux-gnu.so"
    bad.parent.mkdir()
    bad.write_bytes(elf(X86_64, big_endian=big_endian))
    # When checked / Then exit 1, naming the file and its machine
    assert load_checker().main([str(build)]) == 1
    assert f"error: {bad} is x86-64, not aarch64" in capsys.readouterr().err


def test_the_script_runs_as_sam_checks_runs_it(build: Path) -> None:
    # Given an x86-64 object / When the script runs as sam_checks.sh runs it / Then it fails, naming it
    (build / "Fn" / "bad.so").write_bytes(elf(X86_64))
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "check_native_arch.py"), str(build)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "bad.so is x86-64" in result.stderr
