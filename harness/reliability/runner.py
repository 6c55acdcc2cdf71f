"""Run the catalogues of bad inputs and faults through the local workflow and tabulate the outcomes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.local.workflow import LocalWorkflow
from harness.reliability.cases import EVENT_CASES, FAULT_CASES, INPUT_CASES, apply_fault
from harness.samples import bundled_images


@dataclass
class Row:
    kind: str  # "input", "event" or "fault"
    name: str
    expected: str
    status: str
    error: str | None
    attempts: int | None
    passed: bool
    reason: str


class _FixedAnswer:
    """The endpoint's model for the fault runs: confident, so that only the injected fault decides."""

    def predict(self, body: bytes, content_type: str) -> list[float]:
        return [0.99, 0.01]


def _reason(message: str | None) -> str:
    text = message or ""
    return text if len(text) <= 90 else text[:87] + "..."


def run_catalogue(log_dir: Path) -> list[Row]:
    rows: list[Row] = []
    with LocalWorkflow(log_dir=log_dir) as workflow:
        for case in INPUT_CASES:
            if case.make is not None:
                workflow.upload(case.make(), case.key)
            result = workflow.run(case.key)
            outcome = (
                "classified"
                if result.status == "SUCCEEDED" or result.error == "THRESHOLD_CONFIDENCE_NOT_MET"
                else result.error
            )
            rows.append(
                Row(
                    "input",
                    case.name,
                    case.outcome,
                    result.status,
                    result.error,
                    None,
                    outcome == case.outcome,
                    _reason(result.message),
                )
            )
        for event_case in EVENT_CASES:
            result = workflow.wait(workflow.start(event_case.execution_input))
            rows.append(
                Row(
                    "event",
                    event_case.name,
                    event_case.outcome,
                    result.status,
                    result.error,
                    None,
                    result.error == event_case.outcome,
                    _reason(result.message),
                )
            )
    image = bundled_images()[0].data
    for fault in FAULT_CASES:
        with LocalWorkflow(model=_FixedAnswer(), log_dir=log_dir) as workflow:
            apply_fault(workflow, fault, invocation_timeout_seconds=0.2)
            result = workflow.run(workflow.upload(image, "test/fault.png"))
        outcome = result.status if result.status == "SUCCEEDED" else result.error
        attempts = result.attempts(fault.state)
        rows.append(
            Row(
                "fault",
                fault.name,
                f"{fault.outcome} after {fault.attempts}",
                result.status,
                result.error,
                attempts,
                outcome == fault.outcome and attempts == fault.attempts,
                _reason(result.message),
            )
        )
    return rows


def rows_as_json(rows: list[Row]) -> str:
    return "\n".join(json.dumps(asdict(row)) for row in rows)


_TITLES = {
    "input": "Bad and awkward inputs",
    "event": "Malformed state machine input",
    "fault": "Injected faults (attempts counted from the execution history)",
}


def rows_as_markdown(rows: list[Row]) -> str:
    lines: list[str] = []
    for kind, title in _TITLES.items():
        lines += [
            f"### {title}",
            "",
            "| case | expected | status | error | attempts | as catalogued |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for row in (r for r in rows if r.kind == kind):
            attempts = "" if row.attempts is None else str(row.attempts)
            ok = "yes" if row.passed else "**NO**"
            lines.append(
                f"| {row.name} | {row.expected} | {row.status} | {row.error or ''} | {attempts} | {ok} |"
            )
        lines.append("")
    passed = sum(1 for row in rows if row.passed)
    lines.append(f"{len(rows)} cases, {passed} as catalogued, {len(rows) - passed} not.")
    return "\n".join(lines)
