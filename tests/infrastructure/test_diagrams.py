"""The README's state machine diagrams are the ASL's: each committed SVG holds exactly the states and
edges (Catch and Retry included) that `scones graph` draws from the ASL file today.

The comparison reads the ids and classes `scones graph` gives each state and edge, not the bytes, so
another Graphviz version's layout does not fail it, and it needs no Graphviz at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.ops.view.graph import drawn_elements, expected_elements
from harness.ops.view.machine import Machine

ROOT = Path(__file__).resolve().parents[2]
ASL_FILES = sorted((ROOT / "statemachine").glob("*.asl.json"))


@pytest.mark.parametrize("asl", ASL_FILES, ids=lambda p: p.name)
def test_the_committed_diagram_draws_every_state_and_edge_of_the_asl(asl: Path) -> None:
    # Given the diagram committed under docs/img for this ASL file
    svg = ROOT / "docs" / "img" / asl.name.replace(".asl.json", ".svg")
    assert svg.is_file(), f"{svg.relative_to(ROOT)} is missing: run `make diagrams`"
    # When its states and edges are read back / Then they are the ASL's, edge kinds included
    drawn = sorted(drawn_elements(svg.read_text(encoding="utf-8")))
    expected = sorted(expected_elements(Machine.from_file(asl)))
    assert drawn == expected, "the diagram is out of date: run `make diagrams` (scones graph)"


def test_the_readme_shows_the_generated_diagrams() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for asl in ASL_FILES:
        assert f"docs/img/{asl.name.replace('.asl.json', '.svg')}" in readme


def test_every_kind_of_edge_is_read_from_the_asl() -> None:
    # Given the main workflow / When it is read as a graph
    machine = Machine.from_file(ROOT / "statemachine" / "image_classification.asl.json")
    kinds = {(edge.source, edge.target, edge.kind) for edge in machine.edges}
    # Then Next, Choice rules and Default, Catch (each matcher's own target) and Retry loops are edges
    assert ("SerializeImageData", "SkipDuplicateDelivery", "next") in kinds
    assert ("SkipDuplicateDelivery", "DuplicateDeliveryIgnored", "choice") in kinds
    assert ("SkipDuplicateDelivery", "ClassifyImage", "default") in kinds
    assert ("FilterInferences", "KeepForReview", "catch") in kinds
    assert ("ClassifyImage", "ReleaseDelivery", "catch") in kinds
    assert ("ClassifyImage", "ClassifyImage", "retry") in kinds
    assert ("ThresholdConfidenceNotMet", "__end__", "end") in kinds
