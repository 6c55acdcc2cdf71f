"""The execution page's event history is the execution's own: every event, in order, with its type and
the state it belongs to; state inputs and outputs keep everything but the base64 image data."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from tests.integration.harness.view.conftest import Viewed

pytestmark = pytest.mark.integration


class HistoryTable(HTMLParser):
    """The rows of the page's #history table: (id, type, state, time since start)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_row = False
        self._depth = 0  # inside a <td> of the row (details excluded: only the first four cells)
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr" and ("class", "event") in attrs:
            self._in_row = True
            self.rows.append([])
        elif self._in_row and tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr":
            self._in_row = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def rows_of(viewed: Viewed) -> list[list[str]]:
    table = HistoryTable()
    table.feed(viewed.page.read_text(encoding="utf-8"))
    return table.rows


@pytest.mark.parametrize("scenario", ["demo", "low-confidence", "retried", "batch"])
def test_the_rendered_history_is_the_executions_own(viewed: dict[str, Viewed], scenario: str) -> None:
    # Given an execution's own history, asked of Step Functions apart from the view
    execution = viewed[scenario]
    history = sorted(execution.history, key=lambda event: event["id"])
    # When its page's history table is read back
    rows = rows_of(execution)
    # Then it lists every event once, in order, with its id and type
    assert [(int(row[0]), row[1]) for row in rows] == [(event["id"], event["type"]) for event in history]
    # and each state's events under that state's name, as the console attributes them
    current = ""
    for row, event in zip(rows, history, strict=True):
        entered = event.get("stateEnteredEventDetails")
        current = entered["name"] if entered else current
        assert row[2] == current
    # and the time since the start grows with the events
    started = history[0]["timestamp"]
    for row, event in zip(rows, history, strict=True):
        expected_ms = (event["timestamp"] - started).total_seconds() * 1000
        assert abs(float(row[3].removesuffix(" ms").replace(",", "")) - expected_ms) <= 1


def test_image_data_is_shown_once_as_the_image_and_elided_everywhere_else(viewed: dict[str, Viewed]) -> None:
    # Given the demo execution, whose serialize output carries the image as base64
    execution = viewed["demo"]
    output = execution.result.state_output("SerializeImageData")
    assert output is not None
    image_data = output["image_data"]
    # When its page is read
    page = execution.page.read_text(encoding="utf-8")
    # Then the base64 appears once, as the image, and elsewhere its length stands for it
    assert page.count(image_data) == 1
    assert f'src="data:image/png;base64,{image_data}"' in page
    assert f"&lt;base64 image data: {len(image_data):,} characters&gt;" in page


def test_the_terminal_error_and_the_retries_are_on_the_page(viewed: dict[str, Viewed]) -> None:
    low = viewed["low-confidence"].page.read_text(encoding="utf-8")
    assert "THRESHOLD_CONFIDENCE_NOT_MET" in low
    assert "below the threshold" in low
    retried = viewed["retried"].page.read_text(encoding="utf-8")
    # Two failed attempts, each followed by its retry's delay, then the third attempt succeeded
    assert retried.count("retried after") == 2
    assert "ClassifyImage (3 attempts)" in retried
