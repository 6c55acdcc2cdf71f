"""The execution view's HTML: one self-contained page per execution (inline CSS and SVG, the image as a
data URI, no script) and an index page for a run or a batch."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from harness.ops.view.graph import BORDER, FILL, inline_svg, to_dot
from harness.ops.view.machine import Machine
from harness.ops.view.path import (
    NOT_RECORDED,
    STATUSES,
    ExecutionPath,
    StateRun,
    elide,
    pretty,
    read_path,
)
from harness.ops.view.record import ChildExecution, ExecutionRecord
from harness.ops.view.trace import Span, spans

_CSS = """
body{font:14px/1.45 "DejaVu Sans",system-ui,sans-serif;margin:24px;color:#1d2329;max-width:1500px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #e5e5e5;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f5f7fa}td.n{text-align:right;white-space:nowrap}
pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:420px;margin:4px 0;white-space:pre-wrap;
word-break:break-all;font-size:12px}details summary{cursor:pointer}.muted{color:#666}
.status{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:bold;border:1px solid}
.graph svg{max-width:100%;height:auto}.legend span{display:inline-block;margin-right:10px;padding:0 6px;
border:1px solid;border-radius:4px;font-size:12px}.error{background:#fdecea;border-left:4px solid #b3261e;
padding:8px 12px}.top{display:flex;gap:24px;align-items:flex-start}.top img{image-rendering:pixelated;
border:1px solid #ccc}code{font-size:12px}
table.waterfall td{padding:2px 8px}table.waterfall td.bar{width:55%;min-width:320px}
.axis{position:relative;height:14px;background:repeating-linear-gradient(90deg,#f3f5f8 0,#f3f5f8 1px,
transparent 1px,transparent 10%)}.axis .span{position:absolute;top:2px;height:10px;border-radius:2px}
.span.ok{background:#6b9bd1}.span.fn{background:#1f5fae}.span.error{background:#e0a100}
.span.throttle{background:#9c27b0}.span.fault{background:#b3261e}tr.ticks td{font-size:11px;color:#666}
.ticks .axis{background:none;border-bottom:1px solid #bbb}.ticks .axis span{position:absolute;top:0}
.annotation{display:inline-block;margin:0 6px 0 0;font-size:12px}.exc{color:#b3261e;font-size:12px}
"""
_STATUS_COLOUR = {
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "TIMED_OUT": "failed",
    "ABORTED": "failed",
    "RUNNING": "running",
}
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp")


@dataclass
class Page:
    """One execution page written: where, and what the index lists about it."""

    path: Path
    name: str
    status: str
    key: str
    error: str
    children: int = 0


def document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def _badge(status: str) -> str:
    key = _STATUS_COLOUR.get(status, status)
    style = f"background:{FILL.get(key, '#fff')};border-color:{BORDER.get(key, '#999')}"
    return f'<span class="status" style="{style}">{escape(status)}</span>'


def _legend() -> str:
    return (
        '<p class="legend">'
        + "".join(
            f'<span style="background:{FILL[s]};border-color:{BORDER[s]}">{escape(s.replace("-", " "))}'
            "</span>"
            for s in STATUSES
        )
        + (
            '<span style="border-style:dashed;border-color:#c25e00">Catch edge</span>'
            '<span style="border-style:dotted;border-color:#9a7d00">Retry loop</span>'
            '<span style="border-color:#1f5fae;border-width:2px">path taken</span></p>'
        )
    )


def _json_or_text(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value * 1000:,.0f} ms"


def _message(cause: str) -> str:
    """A Lambda error payload's errorMessage, else the cause itself."""
    parsed = _json_or_text(cause)
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return f"{parsed['errorMessage']} ({parsed.get('errorType', '')})"
    return cause


def find_image(history: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(content type, base64) of the image a state passed on, e.g. serialize's output."""
    for event in history:
        for details in (event.get("stateExitedEventDetails"), event.get("stateEnteredEventDetails")):
            value = _json_or_text((details or {}).get("output") or (details or {}).get("input"))
            if isinstance(value, dict) and isinstance(value.get("image_data"), str) and value["image_data"]:
                content_type = str(value.get("content_type") or _sniff(value["image_data"]))
                if content_type in _IMAGE_TYPES:
                    return content_type, value["image_data"]
    return None


def _sniff(data: str) -> str:
    for prefix, kind in (
        ("iVBOR", "image/png"),
        ("/9j/", "image/jpeg"),
        ("R0lG", "image/gif"),
        ("UklG", "image/webp"),
    ):
        if data.startswith(prefix):
            return kind
    return ""


def _state_rows(runs: dict[str, StateRun]) -> str:
    rows = []
    for run in runs.values():
        retries = "".join(
            f"<div>attempt {n} failed at {_seconds(f.at)}: <code>{escape(f.error)}</code>"
            + (f"; retried after {_seconds(f.retried_after)}" if f.retried_after is not None else "")
            + "</div>"
            for n, f in enumerate(run.failures, start=1)
        )
        duration = (
            _seconds(run.exited_at - run.entered_at)
            if run.exited_at is not None and run.entered_at is not None
            else ""
        )
        io = "".join(
            f"<details><summary>{label}</summary><pre>{escape(pretty(_json_or_text(text)))}</pre></details>"
            for label, text in (("input", run.input), ("output", run.output))
            if text
        )
        rows.append(
            f'<tr id="run-{escape(run.name)}" data-status="{run.status}"><td>{escape(run.name)}</td>'
            f"<td>{escape(run.type)}</td><td>{_badge(run.status)}</td><td class=n>{run.attempts or ''}</td>"
            f"<td class=n>{duration}</td><td>{retries}</td><td>{io}</td></tr>"
        )
    return (
        "<table><thead><tr><th>state</th><th>type</th><th>status</th><th>attempts</th><th>duration</th>"
        "<th>failures and retries</th><th>input and output</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _history_rows(path: ExecutionPath) -> str:
    rows = []
    for row in path.rows:
        details = elide(row.details)
        short = ", ".join(
            f"{k}: {v}"
            for k, v in details.items()
            if isinstance(v, str | int | float) and k not in ("input", "output")
        )[:160]
        cell = (
            f"<details><summary>{escape(short) or 'details'}</summary>"
            f"<pre>{escape(pretty(details))}</pre></details>"
            if details
            else ""
        )
        rows.append(
            f'<tr class="event" data-id="{row.id}"><td class=n>{row.id}</td><td>{escape(row.type)}</td>'
            f"<td>{escape(row.state)}</td><td class=n>{_seconds(row.since_start)}</td><td>{cell}</td></tr>"
        )
    return (
        '<table id="history"><thead><tr><th>ID</th><th>type</th><th>state</th><th>time since start</th>'
        "<th>details</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


_OUTCOME_NOTE = {"error": "error (4xx)", "throttle": "throttled", "fault": "fault"}
# Annotations every Powertools Tracer adds on its own; the waterfall lists the functions' own first.
_POWERTOOLS_ANNOTATIONS = ("ColdStart", "Service")


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def waterfall(record: ExecutionRecord) -> str:
    """The execution's trace: each segment and subsegment as a bar on one time axis (plain HTML and CSS),
    with its annotations and errors; or why there is none."""
    rows = spans(record.segments)
    if not rows:
        why = (
            "no X-Ray trace header on this execution (tracing is off on its state machine)"
            if not record.trace_id
            else f"no segments of trace {record.trace_id} were found (X-Ray takes up to a minute to "
            "process a trace; a local workflow run without tracing keeps none)"
        )
        return f'<p class="muted" id="no-trace">No trace: {escape(why)}.</p>'
    start = min([r.start for r in rows] + [t for t in [_epoch(record.described.get("startDate"))] if t])
    end = max([r.end or r.start for r in rows] + [t for t in [_epoch(record.described.get("stopDate"))] if t])
    total = max(end - start, 1e-6)

    def place(span: Span) -> str:
        # At least 0.4 % wide (a few pixels), so that a sub-millisecond call still shows, and inside the axis.
        width = min(max(((span.end or end) - span.start) / total * 100, 0.4), 100.0)
        left = min(max((span.start - start) / total * 100, 0.0), 100.0 - width)
        return f"left:{left:.3f}%;width:{width:.3f}%"

    ticks = "".join(
        f'<span style="left:{fraction * 100:.0f}%">{_seconds(total * fraction)}</span>'
        for fraction in (0, 0.25, 0.5, 0.75)
    )
    body = [
        f'<tr class="ticks"><td></td><td class="bar"><div class="axis">{ticks}</div></td>'
        "<td></td><td></td></tr>"
    ]
    for span in rows:
        own = {k: v for k, v in span.annotations.items() if k not in _POWERTOOLS_ANNOTATIONS}
        rest = {k: v for k, v in span.annotations.items() if k in _POWERTOOLS_ANNOTATIONS}
        notes = "".join(
            f'<span class="annotation"><b>{escape(k)}</b>={escape(_value(v))}</span>'
            for k, v in [*own.items(), *rest.items()]
        ) + "".join(f'<div class="exc">{escape(e)}</div>' for e in span.exceptions)
        colour = span.outcome if span.outcome != "ok" else ("fn" if span.is_function else "ok")
        title = f"{span.label}: {_seconds((span.end or end) - span.start)}" + (
            f", {_OUTCOME_NOTE[span.outcome]}" if span.outcome in _OUTCOME_NOTE else ""
        )
        duration = _seconds(span.end - span.start) if span.end is not None else "in progress"
        body.append(
            f'<tr class="span-row" data-kind="{span.kind}" data-origin="{escape(span.origin)}" '
            f'data-name="{escape(span.name)}" data-outcome="{span.outcome}">'
            f'<td style="padding-left:{8 + 16 * span.depth}px">{escape(span.label)}'
            + (f' <span class="muted">{escape(span.origin)}</span>' if span.origin else "")
            + f'</td><td class="bar"><div class="axis"><div class="span {colour}" style="{place(span)}" '
            f'title="{escape(title)}"></div></div></td><td class=n>{duration}</td><td>{notes}</td></tr>'
        )
    return (
        f'<p class="muted">X-Ray trace <code>{escape(record.trace_id)}</code>: {len(rows)} segments and '
        f"subsegments over {_seconds(total)}; dark bars are the functions' invocations, red ones faults, "
        "amber ones errors.</p>"
        '<table class="waterfall"><thead><tr><th>segment</th><th>time since start</th><th>duration</th>'
        f"<th>annotations and errors</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def execution_page(
    record: ExecutionRecord, machine: Machine, *, children_links: str = "", up: str = ""
) -> str:
    path = read_path(machine, record.history)
    taken = set(path.transitions) | {(r.name, r.name, False) for r in path.states.values() if r.attempts > 1}
    graph = inline_svg(to_dot(machine, path.states, taken, title=record.name))
    described = record.described
    start: datetime = described["startDate"]
    stop: datetime | None = described.get("stopDate")
    execution_input = _json_or_text(described.get("input"))
    key = (
        execution_input.get("s3_key", execution_input.get("prefix", ""))
        if isinstance(execution_input, dict)
        else ""
    )
    image = find_image(record.history)
    image_html = (
        f'<figure><img src="data:{image[0]};base64,{image[1]}" width="128" alt="{escape(str(key))}">'
        f"<figcaption class=muted>{escape(str(key))}</figcaption></figure>"
        if image
        else ""
    )
    error = ""
    if described.get("error") or described.get("cause"):
        error = (
            f'<div class="error"><b>{escape(str(described.get("error", "")))}</b>: '
            f"{escape(_message(str(described.get('cause', ''))))}</div>"
        )
    retried = [r for r in path.states.values() if len(r.failures) and r.attempts > 1]
    summary = (
        f"<p>{_badge(record.status)} started {escape(start.isoformat(timespec='milliseconds'))}"
        + (f", {_seconds((stop - start).total_seconds())}" if stop else "")
        + (
            f"; retried: {', '.join(f'{escape(r.name)} ({r.attempts} attempts)' for r in retried)}"
            if retried
            else ""
        )
        + f'</p><p class="muted">{escape(record.arn)}<br>'
        + f"{escape(str(described.get('stateMachineArn', '')))}</p>"
    )
    body = (
        (f'<p><a href="{escape(up)}">← all executions</a></p>' if up else "")
        + f"<h1>{escape(record.name)}</h1>"
        + f'<div class="top"><div>{summary}{error}</div>{image_html}</div>'
        + f'<h2>Graph</h2>{_legend()}<div class="graph">{graph}</div>'
        + f'<h2 id="trace">Trace</h2>{waterfall(record)}'
        + (f"<h2>Child executions</h2>{children_links}" if children_links else "")
        + f"<h2>States</h2>{_state_rows(path.states)}"
        + f"<h2>Execution input</h2><pre>{escape(pretty(execution_input))}</pre>"
        + (
            f"<h2>Execution output</h2><pre>{escape(pretty(_json_or_text(described.get('output'))))}</pre>"
            if described.get("output")
            else ""
        )
        + f"<h2>Event history ({len(path.rows)} events)</h2>{_history_rows(path)}"
    )
    return document(f"{record.name}: {record.status}", body)


def unrecorded_child_page(child: ChildExecution, machine: Machine, up: str) -> str:
    """A Distributed Map child that only its ResultWriter entry tells of (moto keeps no child history)."""
    runs = {name: StateRun(name, state.type, status=NOT_RECORDED) for name, state in machine.states.items()}
    graph = inline_svg(to_dot(machine, runs, title=child.name))
    body = (
        f'<p><a href="{escape(up)}">← the batch execution</a></p><h1>{escape(child.name)}</h1>'
        f"<p>{_badge(child.status)}</p>"
        + (
            f'<div class="error"><b>{escape(child.error)}</b>: {escape(child.cause)}</div>'
            if child.error
            else ""
        )
        + "<p class=muted>This child execution's history is not on this page: the local Step Functions "
        "keeps no child executions of a Distributed Map (its input and outcome here are from the map run's "
        "ResultWriter file), and with --stack only the first 100 children's histories are read.</p>"
        + f'<h2>Graph</h2>{_legend()}<div class="graph">{graph}</div>'
        + f"<h2>Input</h2><pre>{escape(pretty(_json_or_text(child.input)))}</pre>"
        + f"<h2>Output</h2><pre>{escape(pretty(_json_or_text(child.output)))}</pre>"
    )
    return document(f"{child.name}: {child.status}", body)


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) + ".html"


def write_execution(record: ExecutionRecord, directory: Path, *, up: str = "index.html") -> Page:
    """The execution's page (and its children's pages, linked from it) under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    machine = Machine.from_definition(record.definition)
    links = ""
    if record.children:
        child_dir = directory / record.name
        child_machine = next((machine.processor(name) for name in machine.processors), machine)
        rows = []
        for child in record.children:
            target = child_dir / _file_name(child.name)
            child_dir.mkdir(parents=True, exist_ok=True)
            back = f"../{_file_name(record.name)}"
            if child.record is not None:
                target.write_text(
                    execution_page(child.record, Machine.from_definition(child.record.definition), up=back),
                    encoding="utf-8",
                )
            else:
                target.write_text(unrecorded_child_page(child, child_machine, back), encoding="utf-8")
            item = _json_or_text(child.input) or _json_or_text(child.output)
            outcome = _json_or_text(child.output)
            key = item.get("s3_key", "") if isinstance(item, dict) else ""
            done = outcome if isinstance(outcome, dict) else {}
            link = f"{escape(record.name)}/{escape(target.name)}"
            rows.append(
                f'<tr class="child"><td><a href="{link}">{escape(child.name)}</a></td>'
                f"<td>{escape(str(key))}</td><td>{_badge(child.status)}</td>"
                f"<td>{escape(str(done.get('status', '')))}</td>"
                f"<td>{escape(str(done.get('label') or ''))}</td>"
                f"<td>{escape(str(done.get('error') or child.error or ''))}</td></tr>"
            )
        links = (
            "<table><thead><tr><th>child execution</th><th>object</th><th>execution</th><th>outcome</th>"
            "<th>label</th><th>error</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        )
    path = directory / _file_name(record.name)
    path.write_text(execution_page(record, machine, children_links=links, up=up), encoding="utf-8")
    execution_input = _json_or_text(record.described.get("input"))
    key = ""
    if isinstance(execution_input, dict):
        key = str(execution_input.get("s3_key") or execution_input.get("prefix") or "")
    return Page(
        path, record.name, record.status, key, str(record.described.get("error") or ""), len(record.children)
    )


def write_index(pages: list[Page], directory: Path, title: str) -> Path:
    rows = "".join(
        f'<tr><td><a href="{escape(p.path.name)}">{escape(p.name)}</a></td><td>{escape(p.key)}</td>'
        f"<td>{_badge(p.status)}</td><td>{escape(p.error)}</td><td class=n>{p.children or ''}</td></tr>"
        for p in pages
    )
    body = (
        f"<h1>{escape(title)}</h1><p class=muted>{len(pages)} executions</p>"
        "<table><thead><tr><th>execution</th><th>object</th><th>status</th><th>error</th>"
        f"<th>child executions</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    index = directory / "index.html"
    index.write_text(document(title, body), encoding="utf-8")
    return index


def write_view(records: list[ExecutionRecord], directory: Path, title: str) -> Path:
    """Every execution's page and the index linking them; returns the index."""
    pages = [write_execution(record, directory) for record in records]
    return write_index(pages, directory, title)
