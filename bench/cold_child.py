"""One cold start in a fresh interpreter: import a handler module, then run its first invocation.

    python -I -S bench/cold_child.py APP_PY EVENT_JSON SYS_PATH

Run by bench.cold_start as a script in isolated mode without `site` (`-I -S`): no site-packages, no
user site, no PYTHON* variables, nothing but the standard library imported before the clock starts.
SYS_PATH (os.pathsep-separated) goes in front of the standard library's entries, as Lambda orders it:
the function's folder, its packages, the layer's code and the layer's packages, all installed from
the requirement files (bench.cold_env), so the import sees the deployed package set and nothing else.
The parent sets the function's environment. AWS calls of the first invocation are answered by a
botocore before-call hook on the module's clients: no network, and the time measured is the
function's own.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
import time
import types
from pathlib import Path
from typing import Any

RESULT_PREFIX = "BENCH_COLD_RESULT "


class _LambdaContext:
    function_name = "bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    memory_limit_in_mb = 128
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _answer(body: bytes) -> Any:
    """botocore before-call handler: an (AWSResponse, parsed) pair short-circuits the HTTP request."""
    from botocore.awsrequest import AWSResponse
    from botocore.response import StreamingBody

    def handler(model: Any, **_: Any) -> Any:
        parsed: dict[str, Any] = {"ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {}}}
        if model.name == "HeadObject":
            parsed["ContentLength"] = len(body)
        elif model.name in ("GetObject", "InvokeEndpoint"):
            payload = body if model.name == "GetObject" else b"[0.9712, 0.0288]"
            parsed["Body"] = StreamingBody(io.BytesIO(payload), len(payload))
        return AWSResponse("https://bench.local", 200, {}, None), parsed

    return handler


def _clients(module: types.ModuleType) -> list[Any]:
    """botocore clients held by the module, directly or by one of its objects (an adapter)."""
    found = []
    for value in vars(module).values():
        for candidate in (value, *getattr(value, "__dict__", {}).values()):
            if hasattr(candidate, "meta") and hasattr(candidate.meta, "events"):
                found.append(candidate)
    return found


def main() -> None:
    app_path, event_path, search_path = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    event = json.loads(event_path.read_text())
    object_bytes = Path(event.pop("__object_file__")).read_bytes() if "__object_file__" in event else b""
    sys.path[:0] = search_path.split(os.pathsep)

    started, started_cpu = time.perf_counter(), time.process_time()
    spec = importlib.util.spec_from_file_location("app", app_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    imported, imported_cpu = time.perf_counter(), time.process_time()

    for client in _clients(module):
        client.meta.events.register("before-call.*.*", _answer(object_bytes))
    if "boto3" in sys.modules:  # clients made lazily in the invocation (the delivery ledger's) come from here
        import boto3

        boto3._get_default_session().events.register("before-call.*.*", _answer(object_bytes))
    module.lambda_handler(event, _LambdaContext())
    invoked = time.perf_counter()

    result = {
        "import_ms": (imported - started) * 1000.0,
        # CPU time too: on a shared machine it moves far less than wall time when others are busy.
        "import_cpu_ms": (imported_cpu - started_cpu) * 1000.0,
        "first_invoke_ms": (invoked - imported) * 1000.0,
    }
    print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
