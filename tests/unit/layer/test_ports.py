"""Logic depends on ports only: no module of scones_common.logic loads boto3 or botocore."""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys

import scones_common.logic
from tests.helpers import PROJECT_ROOT

LAYER = PROJECT_ROOT / "layers" / "common"


def test_logic_imports_neither_boto3_nor_botocore() -> None:
    # Given every module of scones_common.logic, imported in a fresh interpreter from this repo's layer
    modules = [f"scones_common.logic.{m.name}" for m in pkgutil.iter_modules(scones_common.logic.__path__)]
    assert {"scones_common.logic.serialize", "scones_common.logic.summarize"} <= set(modules)
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(LAYER)},
        capture_output=True,
        text=True,
        check=True,
    )
    # Then neither SDK was loaded, directly or through the adapters
    assert json.loads(done.stdout) == []
