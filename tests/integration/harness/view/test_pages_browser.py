"""The execution pages in headless Chromium: every state of the ASL is drawn with the status the
execution gave it, the page loads nothing from outside, and the console stays clean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.ops.view.path import CAUGHT, FAILED, IN_CHILDREN, NOT_ENTERED, NOT_RECORDED, RETRIED, SUCCEEDED
from tests.integration.harness.view.conftest import Viewed, asl_states
from tests.integration.monitor.test_monitor_browser import CHROMIUM, DevTools, requires_chromium

pytestmark = [pytest.mark.integration, requires_chromium]

MAIN, BATCH = "image_classification.asl.json", "batch_classification.asl.json"
# The states each execution entered and how each ended; every other state of the ASL: not entered.
DEMO = {
    "SerializeImageData": SUCCEEDED,
    "SkipDuplicateDelivery": SUCCEEDED,
    "ClassifyImage": SUCCEEDED,
    "FilterInferences": SUCCEEDED,
    "PublishClassification": SUCCEEDED,
    "ImageClassified": SUCCEEDED,
}
EXPECTED: dict[str, tuple[str, dict[str, str]]] = {
    "demo": (MAIN, DEMO),
    "low-confidence": (
        MAIN,
        {
            **{name: SUCCEEDED for name in ("SerializeImageData", "SkipDuplicateDelivery", "ClassifyImage")},
            "FilterInferences": CAUGHT,
            "KeepForReview": SUCCEEDED,
            "PublishReviewRequest": SUCCEEDED,
            "CountLowConfidenceExecution": SUCCEEDED,
            "ThresholdConfidenceNotMet": FAILED,
        },
    ),
    "retried": (MAIN, {**DEMO, "ClassifyImage": RETRIED}),
    "batch": (
        BATCH,
        {
            "ReadBatchSettings": SUCCEEDED,
            "ClassifyEachImage": SUCCEEDED,
            "SummarizeBatch": SUCCEEDED,
            "PublishBatchSummary": SUCCEEDED,
            "AnyImageFailed": SUCCEEDED,
            "BatchSummarized": SUCCEEDED,
        },
    ),
}


def problems(events: list[dict[str, Any]], url: str) -> list[Any]:
    """Console errors, exceptions, failed requests and any request for something outside the page."""
    found: list[Any] = []
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if (
            method == "Runtime.exceptionThrown"
            or (method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert", "warning"))
            or (method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"))
            or method == "Network.loadingFailed"
        ):
            found.append(params)
        if method == "Network.requestWillBeSent":
            requested = params["request"]["url"]
            if requested != url and not requested.startswith("data:"):
                found.append(requested)
    return found


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Any:
    assert CHROMIUM is not None
    devtools = DevTools(CHROMIUM, tmp_path_factory.mktemp("profile"))
    try:
        devtools.open_page()
        yield devtools
    finally:
        devtools.close()


def navigate(browser: DevTools, page: Path) -> str:
    """Load the page in Chromium, with the events of any earlier page forgotten; returns its URL."""
    browser.events.clear()
    url = page.resolve().as_uri()
    browser.send("Page.navigate", {"url": url})
    browser.wait_for("Page.loadEventFired")
    return url


def open_page(browser: DevTools, page: Path) -> tuple[dict[str, Any], list[Any]]:
    """What the page shows: its states (id -> class), image and child links; and what went wrong."""
    url = navigate(browser, page)
    shown = browser.evaluate(
        "({states: Object.fromEntries(Array.from(document.querySelectorAll('svg g.state'),"
        " g => [g.id, g.getAttribute('class')])),"
        " images: Array.from(document.images, i => ({complete: i.complete, width: i.naturalWidth})),"
        " children: Array.from(document.querySelectorAll('tr.child a'), a => a.href),"
        " rows: document.querySelectorAll('tr.event').length})"
    )
    return shown, problems(browser.events, url)


@pytest.mark.parametrize("scenario", list(EXPECTED))
def test_every_state_of_the_asl_is_drawn_with_its_status(
    browser: DevTools, viewed: dict[str, Viewed], scenario: str
) -> None:
    # Given the page of an execution, and the ASL file as it is now
    asl, entered = EXPECTED[scenario]
    # When Chromium opens it
    shown, errors = open_page(browser, viewed[scenario].page)
    # Then every state of the ASL is drawn once, coloured by what happened to it
    top_level, inner = asl_states(asl)
    expected = {f"state-{name}": f"node state {entered.get(name, NOT_ENTERED)}" for name in top_level}
    # a Map's ItemProcessor runs in the child executions, each with a page of its own
    expected.update({f"state-{name}": f"node state {IN_CHILDREN}" for name in inner})
    assert shown["states"] == expected
    assert shown["rows"] == len(viewed[scenario].history)
    # and the image (when the execution carried one) decoded, and nothing went wrong or left the page
    assert all(image["complete"] and image["width"] > 0 for image in shown["images"])
    assert errors == []


def test_the_batch_page_links_each_child_execution(browser: DevTools, viewed: dict[str, Viewed]) -> None:
    # Given the batch over three images and a text file
    shown, _ = open_page(browser, viewed["batch"].page)
    # Then it links one page per child execution (one per object)
    assert len(shown["children"]) == 4
    # and each child page opens cleanly with the ItemProcessor's states (moto keeps no child history)
    for link in shown["children"]:
        child, errors = open_page(browser, Path(link.removeprefix("file://")))
        assert errors == []
        assert child["states"]
        assert set(child["states"].values()) == {f"node state {NOT_RECORDED}"}


def lambda_tasks(history: list[dict[str, Any]]) -> list[str]:
    """The function of every Lambda Task attempt in a history (TaskScheduled of resource type lambda)."""
    functions = []
    for event in history:
        details = event.get("taskScheduledEventDetails") or {}
        if event["type"] == "TaskScheduled" and details.get("resourceType") == "lambda":
            functions.append(json.loads(details["parameters"])["FunctionName"].rsplit(":", 1)[-1])
    return functions


FAULTED = {
    "demo": [],
    "low-confidence": ["FilterInferencesFunction"],
    "retried": ["ClassifyImageFunction", "ClassifyImageFunction"],
}


@pytest.mark.parametrize("scenario", list(FAULTED))
def test_the_waterfall_draws_a_bar_for_every_function_invoked(
    browser: DevTools, viewed: dict[str, Viewed], scenario: str
) -> None:
    # Given the page of an execution run with X-Ray active, as `scones demo` runs them
    invoked = lambda_tasks(viewed[scenario].history)
    assert invoked
    # When Chromium opens it
    url = navigate(browser, viewed[scenario].page)
    bars = browser.evaluate(
        "Array.from(document.querySelectorAll('table.waterfall tr.span-row'), row => {"
        " const bar = row.querySelector('.axis .span').getBoundingClientRect();"
        " const axis = row.querySelector('.axis').getBoundingClientRect();"
        " return {kind: row.dataset.kind, origin: row.dataset.origin, name: row.dataset.name,"
        " outcome: row.dataset.outcome, width: bar.width, inside: bar.left >= axis.left - 0.5"
        " && bar.right <= axis.right + 0.5}; })"
    )
    # Then each function invocation is one visible bar on the trace's time axis, in the order invoked
    functions = [bar for bar in bars if bar["origin"] == "AWS::Lambda::Function"]
    assert [bar["name"] for bar in functions] == invoked
    assert all(bar["width"] > 0 and bar["inside"] for bar in bars)
    # with its subsegments under it: the handler, and the S3 and SageMaker calls
    names = {bar["name"] for bar in bars if bar["kind"] == "subsegment"}
    assert {"## lambda_handler", "s3", "runtime.sagemaker"} <= names
    # and each failed invocation is drawn as a fault: the low-confidence filter, the two throttled attempts
    failed = [bar["name"] for bar in functions if bar["outcome"] == "fault"]
    assert failed == FAULTED[scenario]
    assert problems(browser.events, url) == []
