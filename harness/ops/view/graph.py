"""The state machine as Graphviz DOT, each state coloured by what happened to it, and `dot` to draw it.

Graphviz (Debian's `graphviz` package) lays the graph out; every state becomes an SVG group with
id `state-NAME` and class `state STATUS`, every edge an id naming its kind and ends, so a page, a test
and the README's drift check can read the drawing back.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess

from harness.errors import ToolError
from harness.ops.view.machine import END, START, Edge, Machine, State
from harness.ops.view.path import (
    CAUGHT,
    FAILED,
    IN_CHILDREN,
    NOT_ENTERED,
    NOT_RECORDED,
    RETRIED,
    RUNNING,
    SUCCEEDED,
    StateRun,
)

FILL = {
    SUCCEEDED: "#cdeccd",
    RETRIED: "#fff0a0",
    CAUGHT: "#fdd9a8",
    FAILED: "#f6c1bc",
    RUNNING: "#cfe0f7",
    NOT_ENTERED: "#ffffff",
    IN_CHILDREN: "#ececec",
    NOT_RECORDED: "#ececec",
}
BORDER = {
    SUCCEEDED: "#2e7d32",
    RETRIED: "#9a7d00",
    CAUGHT: "#c25e00",
    FAILED: "#b3261e",
    RUNNING: "#1f5fae",
    NOT_ENTERED: "#9e9e9e",
    IN_CHILDREN: "#757575",
    NOT_RECORDED: "#757575",
}
_SHAPES = {"Choice": "diamond", "Map": "box3d", "Parallel": "box3d", "Pass": "box", "Wait": "box"}
_EDGE_STYLE = {
    "start": 'color="#555555"',
    "next": 'color="#555555"',
    "end": 'color="#555555"',
    "default": 'color="#555555" fontcolor="#555555"',
    "choice": 'color="#555555" fontcolor="#555555"',
    "item": 'color="#555555" style=dashed fontcolor="#555555"',
    "catch": 'color="#c25e00" style=dashed fontcolor="#c25e00"',
    "retry": 'color="#9a7d00" style=dotted fontcolor="#9a7d00"',
}
INSTALL_HINT = (
    "Graphviz's `dot` is not installed: apt-get install graphviz (Debian/Ubuntu), "
    "brew install graphviz (macOS)"
)


class GraphvizMissingError(ToolError):
    """`dot` is needed to draw the state machine."""


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(
    machine: Machine,
    runs: dict[str, StateRun] | None = None,
    taken: set[tuple[str, str, bool]] | None = None,
    *,
    title: str = "",
) -> str:
    """DOT text for `machine`; with `runs`, each state coloured and annotated by its status (without,
    the plain workflow as in the README); edges in `taken` drawn heavier."""
    taken = taken or set()
    font = 'fontname="DejaVu Sans"'
    terminal = 'style=filled fillcolor="#444444" fontcolor=white fontsize=9 fixedsize=true'
    lines = [
        "digraph workflow {",
        f"  graph [rankdir=TB {font} fontsize=11 nodesep=0.35 ranksep=0.45 "
        f"tooltip={_quote(title or 'state machine')}];",
        f'  node [{font} fontsize=11 style="rounded,filled" shape=box margin="0.18,0.06"];',
        f"  edge [{font} fontsize=9 arrowsize=0.7];",
        f'  {START} [id="start" label="Start" shape=circle width=0.5 {terminal}];',
        f'  {END} [id="end" label="End" shape=doublecircle width=0.45 {terminal}];',
    ]
    clusters: dict[str | None, list[str]] = {}
    for name, state in machine.states.items():
        run = runs.get(name) if runs else None
        status = run.status if run else ""
        label = name if not run else f"{name}\n{run.note}"
        shape = _SHAPES.get(state.type, "box")
        style = '"rounded,filled"' if shape == "box" else "filled"
        peripheries = 2 if state.type in ("Succeed", "Fail") else 1
        fill = FILL.get(status, "#f5f7fa")
        border = BORDER.get(status, "#37474f")
        attributes = (
            f"id={_quote('state-' + name)} class={_quote('state ' + (status or 'plain'))} "
            f"label={_quote(label)} shape={shape} style={style} peripheries={peripheries} "
            f'fillcolor="{fill}" color="{border}" tooltip={_quote(state_tooltip(state))}'
        )
        if status == FAILED:
            attributes += " penwidth=2"
        clusters.setdefault(state.parent, []).append(f"  {_node_id(name)} [{attributes}];")
    lines.extend(clusters.pop(None, []))
    for parent, nodes in clusters.items():
        lines.append(f"  subgraph {_quote('cluster_' + str(parent))} {{")
        lines.append(
            f'    label={_quote(f"{parent}: each item, one child execution")} style="rounded,dashed" '
            'color="#9e9e9e" fontsize=10;'
        )
        lines.extend("  " + node for node in nodes)
        lines.append("  }")
    for edge in machine.edges:
        lines.append(_edge(edge, edge_taken(edge, taken)))
    lines.append("}")
    return "\n".join(lines) + "\n"


def state_tooltip(state: State) -> str:
    return f"{state.type}: {state.comment}"[:300].strip()


def edge_tooltip(edge: Edge) -> str:
    if not edge.label:
        return edge.kind
    text = edge.label if edge.label.startswith(edge.kind) else f"{edge.kind}: {edge.label}"
    return text.replace("\n", "; ")


def edge_taken(edge: Edge, taken: set[tuple[str, str, bool]]) -> bool:
    """A Catch edge when the state failed into its target; a Retry loop when the state was retried."""
    if edge.kind == "retry":
        return any(source == target == edge.source for source, target, _ in taken)
    return (edge.source, edge.target, edge.kind == "catch") in taken


def _node_id(name: str) -> str:
    return name if name in (START, END) else _quote(name)


def _edge(edge: Edge, taken: bool) -> str:
    attributes = [f"id={_quote(edge.id)}", f"class={_quote(edge.kind + (' taken' if taken else ''))}"]
    attributes.append(_EDGE_STYLE[edge.kind])
    attributes.append(f"tooltip={_quote(edge_tooltip(edge))}")
    if edge.label:
        attributes.append(f"label={_quote(edge.label)}")
    if taken:
        attributes.append('penwidth=2.6 color="#1f5fae"')
    if edge.kind == "retry":
        attributes.append("headport=e tailport=e")
    if edge.kind == "retry":
        attributes.append("constraint=false")
    return f"  {_node_id(edge.source)} -> {_node_id(edge.target)} [{' '.join(attributes)}];"


def dot_binary() -> str:
    found = shutil.which("dot")
    if found is None:
        raise GraphvizMissingError(INSTALL_HINT)
    return found


def render(dot_text: str, output_format: str = "svg") -> bytes:
    """`dot -T<format>`: the drawing's bytes."""
    completed = subprocess.run(
        [dot_binary(), f"-T{output_format}"], input=dot_text.encode(), capture_output=True, check=False
    )
    if completed.returncode != 0:
        raise ToolError(f"dot failed: {completed.stderr.decode(errors='replace').strip()}")
    return completed.stdout


def inline_svg(dot_text: str) -> str:
    """The SVG element alone (no XML prolog or doctype), to put inside an HTML page."""
    svg = render(dot_text).decode()
    return svg[svg.index("<svg") :]


_ELEMENT = re.compile(
    r'<g id="((?:state|edge)(?:-|&#45;)[^"]+)" class="(?:node|edge) ([^"]+)">\s*<title>[^<]*</title>\s*'
    r'<g id="a_[^"]*"><a xlink:title="([^"]*)">'
)


def drawn_elements(svg: str) -> list[tuple[str, str, str]]:
    """Every state and edge an SVG drawn here holds, (id, class, tooltip) in order; the tooltips carry
    each state's type and each edge's label (Catch errors, Retry attempts and intervals)."""
    return [tuple(html.unescape(part) for part in found) for found in _ELEMENT.findall(svg)]  # type: ignore[misc]


def expected_elements(machine: Machine) -> list[tuple[str, str, str]]:
    """What `drawn_elements` finds in the plain drawing of `machine`."""
    states = [
        (f"state-{name}", "state plain", state_tooltip(state)) for name, state in machine.states.items()
    ]
    return states + [(edge.id, edge.kind, edge_tooltip(edge)) for edge in machine.edges]
