"""Fail when a built Lambda artifact holds native code for another machine than Lambda's arm64.

`sam build` without a container installs wheels for the machine it runs on unless pip is told the
target platform; an x86-64 `.so` in an arm64 function imports nowhere but fails at cold start with
"cannot open shared object file" or "wrong ELF class". This reads each shared object's ELF header
(e_machine) under the given folders, without loading it.

    python scripts/check_native_arch.py .aws-sam/build
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
MACHINES = {3: "x86", 40: "arm", 62: "x86-64", 183: "aarch64", 243: "riscv"}
AARCH64 = 183


def shared_objects(root: Path) -> Iterator[Path]:
    """Every file named like a shared object (`x.so`, `x.so.1.2`, `x.cpython-313-...so`)."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and (path.suffix == ".so" or ".so." in path.name):
            yield path


def elf_machine(path: Path) -> int | None:
    """e_machine of an ELF file, or None when the file is not ELF."""
    with path.open("rb") as handle:
        header = handle.read(20)
    if len(header) < 20 or not header.startswith(ELF_MAGIC):
        return None
    byte_order = "<" if header[5] == 1 else ">"  # EI_DATA: 1 little-endian, 2 big-endian
    (machine,) = struct.unpack(f"{byte_order}H", header[18:20])
    return int(machine)


def foreign_objects(root: Path, wanted: int = AARCH64) -> list[tuple[Path, str]]:
    """(path, machine name) of each ELF shared object under root that is not for `wanted`."""
    found = []
    for path in shared_objects(root):
        machine = elf_machine(path)
        if machine is not None and machine != wanted:
            found.append((path, MACHINES.get(machine, f"e_machine {machine}")))
    return found


def main(argv: list[str]) -> int:
    roots = [Path(arg) for arg in argv] or [Path(".aws-sam/build")]
    checked = sum(1 for root in roots for _ in shared_objects(root))
    foreign = [item for root in roots for item in foreign_objects(root)]
    for path, machine in foreign:
        print(f"error: {path} is {machine}, not aarch64 (Lambda arm64)", file=sys.stderr)
    print(f"{checked} shared objects checked, {len(foreign)} not aarch64")
    return 1 if foreign else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
