"""A state machine definition (ASL) as a graph: its states and every edge between them, Catch and Retry
included, read from the definition itself so the drawing cannot drift from the workflow."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

START = "__start__"
END = "__end__"


@dataclass(frozen=True)
class State:
    name: str
    type: str
    comment: str = ""
    parent: str | None = None  # the Map state whose ItemProcessor holds it


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # start, next, choice, default, catch, retry, end, item
    label: str = ""

    @property
    def id(self) -> str:
        return f"edge--{self.kind}--{self.source}--{self.target}".replace("_", "")


@dataclass
class Machine:
    """The states of a definition in definition order (nested ItemProcessor states after their Map)."""

    comment: str
    states: dict[str, State] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    processors: dict[str, dict[str, Any]] = field(default_factory=dict)  # Map state -> its ItemProcessor

    @classmethod
    def from_definition(cls, definition: str | dict[str, Any]) -> Machine:
        parsed = json.loads(definition) if isinstance(definition, str) else definition
        machine = cls(comment=str(parsed.get("Comment", "")))
        machine.edges.append(Edge(START, parsed["StartAt"], "start"))
        machine._add(parsed, parent=None)
        return machine

    @classmethod
    def from_file(cls, path: Path) -> Machine:
        return cls.from_definition(path.read_text(encoding="utf-8"))

    def processor(self, map_state: str) -> Machine:
        """A Map state's ItemProcessor as a machine of its own: what each child execution runs."""
        return Machine.from_definition(self.processors[map_state])

    def _add(self, definition: dict[str, Any], parent: str | None) -> None:
        for name, body in definition["States"].items():
            kind = str(body["Type"])
            self.states[name] = State(name, kind, str(body.get("Comment", "")), parent)
            if body.get("Retry"):
                # One loop per state, one line per retrier.
                label = "\n".join(_retry_label(retrier) for retrier in body["Retry"])
                self.edges.append(Edge(name, name, "retry", label))
            for catcher in body.get("Catch", []):
                self.edges.append(Edge(name, catcher["Next"], "catch", "catch " + _errors(catcher)))
            for rule in body.get("Choices", []):
                self.edges.append(Edge(name, rule["Next"], "choice", _condition(rule)))
            if "Default" in body:
                self.edges.append(Edge(name, body["Default"], "default", "default"))
            if "Next" in body:
                self.edges.append(Edge(name, body["Next"], "next"))
            if parent is None and (body.get("End") or kind in ("Succeed", "Fail")):
                self.edges.append(Edge(name, END, "end"))
            processor = body.get("ItemProcessor") or body.get("Iterator")
            if kind == "Map" and processor:
                self.processors[name] = processor
                self.edges.append(Edge(name, processor["StartAt"], "item", "each item"))
                self._add(processor, parent=name)


def _errors(rule: dict[str, Any]) -> str:
    errors = [str(e) for e in rule.get("ErrorEquals", [])]
    return errors[0] + (f" +{len(errors) - 1}" if len(errors) > 1 else "")


def _retry_label(retrier: dict[str, Any]) -> str:
    return (
        f"retry {_errors(retrier)} ×{retrier.get('MaxAttempts', 3)}, "
        f"{retrier.get('IntervalSeconds', 1)} s ×{retrier.get('BackoffRate', 2.0)}"
    )


_OPERATORS = {
    "BooleanEquals": "==",
    "StringEquals": "==",
    "NumericEquals": "==",
    "StringMatches": "matches",
    "NumericGreaterThan": ">",
    "NumericLessThan": "<",
    "NumericGreaterThanEquals": ">=",
    "NumericLessThanEquals": "<=",
    "IsPresent": "present:",
}


def _condition(rule: dict[str, Any]) -> str:
    """A Choice rule in one short line, e.g. `$.duplicate == true`; Or/And/Not as `any of N` etc."""
    for combinator, word in (("Or", "any of"), ("And", "all of")):
        if combinator in rule:
            return f"{word} {len(rule[combinator])} rules"
    if "Not" in rule:
        return "not " + _condition(rule["Not"])
    for key, value in rule.items():
        if key in ("Variable", "Next"):
            continue
        operator = _OPERATORS.get(key.removesuffix("Path"), key)
        return f"{rule.get('Variable', '')} {operator} {json.dumps(value)}"
    return ""
