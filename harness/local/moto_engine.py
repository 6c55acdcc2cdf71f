"""Where moto's Step Functions engine differs from AWS in ways the harness must correct.

Installed by LocalWorkflow (through harness.local.process) and taken out again when the last workflow
closes: `install` returns the undo. Each function here names what AWS does and what moto 5.2.5 does
instead; none changes what a state machine or a handler sees beyond making it match AWS.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3

from harness.ops.view.trace import new_trace_root

Undo = Callable[[], None]


def install() -> list[Undo]:
    """Apply every correction; returns the undo of each, in the order they were applied (undo the last
    first)."""
    return [install_result_writer(), reuse_task_clients(), cache_json_paths(), trace_executions()]


# -- one X-Ray trace per execution of a traced state machine ---------------------------------------------
_task = threading.local()


def current_trace_header() -> str | None:
    """Inside a Lambda Task of a traced execution: the execution's trace header (`Root=...;Sampled=1`), as
    Step Functions sends it with the Invoke call; None elsewhere."""
    return getattr(_task, "trace_header", None)


def new_trace_header() -> str:
    """A sampled X-Ray trace header with a new root."""
    return f"Root={new_trace_root()};Sampled=1"


def trace_executions() -> Undo:
    """Give each execution of a traced state machine an X-Ray trace, and carry it to its Lambda Tasks.

    AWS: with tracing enabled on the state machine (TracingConfiguration, SAM's `Tracing`), an execution
    is one trace; DescribeExecution returns its `traceHeader`, and each Lambda Task invokes the function
    with that trace's header, so the functions' segments join the execution's trace. moto 5.2.5 keeps
    an execution's `trace_header` but never sets one, leaves it out of DescribeExecution, and invokes
    functions with no header. Here a traced state machine's execution gets a new sampled header, which
    DescribeExecution returns, and the thread running a Lambda Task holds it for the Invoke hook
    (`current_trace_header`), the way the header travels with the Invoke request on AWS.
    """
    from moto.stepfunctions import responses
    from moto.stepfunctions.parser import models
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    backend = models.StepFunctionsParserBackend
    original_start = backend.start_execution
    original_describe = responses.StepFunctionResponse.describe_execution
    original_invoke = lambda_eval_utils.execute_lambda_function_integration
    headers: dict[str, str] = {}  # execution ARN -> trace header

    @functools.wraps(original_start)
    def start_execution(self: Any, state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
        execution = original_start(self, state_machine_arn, *args, **kwargs)
        machine = self.describe_state_machine(state_machine_arn)
        if (getattr(machine, "tracingConfiguration", None) or {}).get("enabled"):
            if not execution.trace_header:
                execution.trace_header = new_trace_header()
            headers[execution.exec_arn] = execution.trace_header
        return execution

    @functools.wraps(original_describe)
    def describe_execution(self: Any) -> Any:
        result = original_describe(self)
        header = headers.get(str(self._get_param("executionArn")))
        if header and isinstance(result.result, dict):
            result.result["traceHeader"] = header
        return result

    @functools.wraps(original_invoke)
    def execute_lambda_function_integration(env: Any, *args: Any, **kwargs: Any) -> None:
        execution = env.states.context_object.context_object_data.get("Execution") or {}
        previous = getattr(_task, "trace_header", None)
        _task.trace_header = headers.get(str(execution.get("Id", "")))
        try:
            original_invoke(env, *args, **kwargs)
        finally:
            _task.trace_header = previous

    backend.start_execution = start_execution  # type: ignore[method-assign]
    responses.StepFunctionResponse.describe_execution = describe_execution  # type: ignore[method-assign]
    lambda_eval_utils.execute_lambda_function_integration = execute_lambda_function_integration

    def undo() -> None:
        backend.start_execution = original_start  # type: ignore[method-assign]
        responses.StepFunctionResponse.describe_execution = original_describe  # type: ignore[method-assign]
        lambda_eval_utils.execute_lambda_function_integration = original_invoke
        headers.clear()

    return undo


# -- JSONPath parsed once per path ----------------------------------------------------------------------
def cache_json_paths() -> Undo:
    """Parse each JSONPath of the definition once, not at every evaluation.

    moto's `extract_json` calls jsonpath_ng's `parse` for every path it evaluates, and each call builds a
    new PLY parser: about a fifth of a local batch's CPU time (py-spy, 200 images). A parsed path is an
    immutable expression tree whose `find` does not change it, so the same one serves every evaluation.
    """
    from moto.stepfunctions.parser.asl.utils import json_path

    original = json_path.parse
    json_path.parse = functools.lru_cache(maxsize=4096)(original)

    def undo() -> None:
        json_path.parse = original

    return undo


# -- one SDK client per service, as a long-running engine keeps ---------------------------------------
def reuse_task_clients() -> Undo:
    """Reuse the botocore client moto's interpreter creates for each Task instead of a new one each time.

    moto's `boto_client_for` builds a fresh boto3 client for every Lambda, S3, SQS or EventBridge task:
    about a quarter of a local batch's CPU time went to client creation (py-spy, 200 images). Clients
    are thread-safe and carry no per-task state here (moto ignores the state's credentials), so one per
    (default session, region, service) behaves the same. The default session is part of the key because
    each LocalWorkflow installs its hooks on a new one.
    """
    import moto.stepfunctions.parser.asl.parse.asl_parser  # noqa: F401 (imports every task's module)
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    lock = threading.Lock()
    clients: dict[tuple[int, str, str], Any] = {}

    @functools.wraps(original)
    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (id(boto3.DEFAULT_SESSION), region, service)
        with lock:
            client = clients.get(key)
            if client is None:
                if len(clients) > 64:  # sessions of finished workflows
                    clients.clear()
                client = clients[key] = original(region, service, state_credentials)
            return client

    # Every module that imported the function holds its own reference to it.
    holders = [
        module
        for name, module in list(sys.modules.items())
        if name.startswith("moto.stepfunctions.parser")
        and getattr(module, "boto_client_for", None) is original
    ]
    for module in holders:
        module.boto_client_for = boto_client_for  # type: ignore[attr-defined]

    def undo() -> None:
        for module in holders:
            module.boto_client_for = original  # type: ignore[attr-defined]

    return undo


# -- ResultWriter as AWS writes it --------------------------------------------------------------------
def install_result_writer() -> Undo:
    """Make moto's ResultWriter write the result files AWS writes, not only an empty manifest.

    moto 5.2.5 writes `<prefix>/<map run id>/manifest.json` with empty ResultFiles and drops the
    children's outputs. AWS writes them to SUCCEEDED_n.json / FAILED_n.json beside the manifest, one JSON
    array of child executions each, and lists them in the manifest. This keeps moto's manifest and output
    ({"MapRunArn", "ResultWriterDetails"}) and adds the files in AWS's shape, so summarize_batch reads
    them as it would in AWS. moto keeps a failed child's output but not its input or error: such an entry
    says Error "States.Runtime" (the processor catches every step's error, so none is expected).
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
        resource_eval_s3,
    )

    evaluator = resource_eval_s3.ResourceEvalS3
    as_defined = inspect.getattr_static(evaluator, "_handle_put_object")
    original = evaluator._handle_put_object

    def handle_put_object(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
        outputs = list(env.stack[-2]) if len(env.stack) >= 2 and isinstance(env.stack[-2], list) else []
        original(env, resource_runtime_part, state_credentials)
        details = env.stack[-1]["ResultWriterDetails"]
        map_run = env.map_run_record_pool_manager.get_all()[-1]
        _write_result_files(
            evaluator._get_s3_client(resource_runtime_part, state_credentials),
            details["Bucket"],
            details["Key"],
            map_run,
            outputs,
        )

    evaluator._handle_put_object = staticmethod(handle_put_object)  # type: ignore[method-assign]

    def undo() -> None:
        evaluator._handle_put_object = as_defined  # type: ignore[method-assign]

    return undo


def _write_result_files(s3: Any, bucket: str, manifest_key: str, map_run: Any, outputs: list[Any]) -> None:
    folder = manifest_key.rsplit("/", 1)[0]
    map_run_id = map_run.map_run_arn.rsplit(":", 1)[-1]
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    entries: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": []}
    for index, output in enumerate(outputs):
        name = f"{map_run_id[:8]}-{index:06d}"
        executions = map_run.map_state_machine_arn.replace(":stateMachine:", ":execution:")
        entry: dict[str, Any] = {
            "ExecutionArn": f"{executions}:{name}",
            "Name": name,
            "StateMachineArn": map_run.map_state_machine_arn,
            "StartDate": now,
            "StopDate": now,
            "RedriveCount": 0,
        }
        if output is None:
            entry.update(Status="FAILED", Error="States.Runtime", Cause="the child execution failed in moto")
            entries["FAILED"].append(entry)
        else:
            entry.update(Status="SUCCEEDED", Output=json.dumps(output), OutputDetails={"Included": True})
            entries["SUCCEEDED"].append(entry)
    files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for status, items in entries.items():
        if items:
            body = json.dumps(items).encode()
            key = f"{folder}/{status}_0.json"
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            files[status].append({"Key": key, "Size": len(body)})
    manifest = {"DestinationBucket": bucket, "MapRunArn": map_run.map_run_arn, "ResultFiles": files}
    s3.put_object(Bucket=bucket, Key=manifest_key, Body=json.dumps(manifest, indent=2).encode())
