"""The monitor's report in headless Chromium: it opens, every image loads, nothing errs or leaves the page.

Chromium is driven through the DevTools protocol over a pipe (`--remote-debugging-pipe`), so the test
needs nothing from PyPI. Set SCONES_MONITOR_SCREENSHOT=path.png to keep a full-page screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from harness.local.capture import capture_record
from monitor.html_report import write_report
from monitor.read import Capture, parse_record
from monitor.summary import summarize
from tests.helpers import png_bytes

pytestmark = pytest.mark.integration

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    explicit = os.environ.get("SCONES_CHROMIUM")
    if explicit:
        return explicit
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


CHROMIUM = find_chromium()
requires_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (apt-get install chromium), or set SCONES_CHROMIUM to it",
)


_FD_SHIM = """
import os, sys
read, write = int(sys.argv[1]), int(sys.argv[2])
os.dup2(read, 3)
os.dup2(write, 4)
for fd in {read, write} - {3, 4}:
    os.close(fd)
os.execv(sys.argv[3], sys.argv[3:])
"""


class DevTools:
    """A headless Chromium and one page, spoken to in CDP messages over fds 3 (in) and 4 (out)."""

    def __init__(self, binary: str, profile: Path, timeout: float = 60.0) -> None:
        self.timeout = timeout
        to_browser_read, self._write = os.pipe()
        self._read, from_browser_write = os.pipe()
        args = [
            "--headless",
            "--no-sandbox",  # CI runs as root in a container
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # A small Python shim puts the two pipe ends on fds 3 and 4, then becomes Chromium.
        self.process = subprocess.Popen(
            [sys.executable, "-c", _FD_SHIM, str(to_browser_read), str(from_browser_write), binary, *args],
            pass_fds=(to_browser_read, from_browser_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session = ""

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._read], [], [], remaining)
            if ready:
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the pipe (exit code {self.process.poll()})")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        parsed: dict[str, Any] = json.loads(message)
        return parsed

    def send(self, method: str, params: dict[str, Any] | None = None, *, page: bool = True) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if page and self.session:
            message["sessionId"] = self.session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            received = self._receive(deadline)
            if received.get("id") == self._next_id:
                if "error" in received:
                    raise RuntimeError(f"{method}: {received['error']}")
                result: dict[str, Any] = received.get("result", {})
                return result
            self.events.append(received)

    def wait_for(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._receive(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def open_page(self) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, page=False)
        attached = self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, page=False
        )
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    def evaluate(self, expression: str) -> Any:
        answer = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in answer:
            raise RuntimeError(f"page script failed: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close", page=False)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._read)
        os.close(self._write)


def synthetic_capture() -> Capture:
    """Fifteen answers over an afternoon, some below 0.93, from records as the local endpoint writes them."""
    start = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)
    confidences = [0.99, 0.97, 0.62, 0.95, 0.91, 0.98, 0.88, 0.96, 0.99, 0.75, 0.94, 0.97, 0.93, 0.85, 0.99]
    records = []
    for n, confidence in enumerate(confidences):
        probabilities = (
            [confidence, round(1 - confidence, 6)] if n % 3 else [round(1 - confidence, 6), confidence]
        )
        line = json.dumps(
            capture_record(
                png_bytes((32, 32), color=(n * 16 % 256, 40 + n * 10, 200 - n * 12)),
                "image/png",
                json.dumps(probabilities).encode(),
                "application/json",
                when=start + timedelta(minutes=17 * n),
            )
        )
        key = f"data_capture/scones-image-classifier/AllTraffic/2024/05/01/{13 + (17 * n) // 60:02d}/x.jsonl"
        records.append(parse_record(line, key=key, line_number=n + 1))
    return Capture(bucket="scones-local-images", prefix="data_capture/", files=["x.jsonl"], records=records)


@requires_chromium
def test_report_opens_with_every_image_loaded_and_no_errors(tmp_path: Path) -> None:
    # Given a report written from a synthetic capture
    capture = synthetic_capture()
    files = write_report(capture, summarize(capture, 0.93), tmp_path / "report")
    url = files.html.resolve().as_uri()
    assert CHROMIUM is not None
    browser = DevTools(CHROMIUM, tmp_path / "profile")
    try:
        # When headless Chromium opens it
        browser.open_page()
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1100, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
        browser.send("Page.navigate", {"url": url})
        browser.wait_for("Page.loadEventFired")
        title = browser.evaluate("document.title")
        images = browser.evaluate(
            "Array.from(document.images, i => "
            "({src: i.src.slice(0, 22), complete: i.complete, width: i.naturalWidth}))"
        )
        height = browser.evaluate("document.documentElement.scrollHeight")
        screenshot = browser.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": 1100, "height": height, "scale": 1},
            },
        )
    finally:
        browser.close()
    # Then it has its title, and every image (3 charts and 12 gallery images) decoded
    assert title.startswith("Endpoint monitor: scones-image-classifier")
    assert len(images) == 3 + 12
    assert all(i["complete"] and i["width"] > 0 for i in images), images
    assert {i["src"] for i in images} == {"data:image/png;base64,"}
    # and nothing went wrong: no console error, no exception, no failed or outside request
    errors = [
        e
        for e in browser.events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        or e.get("method") == "Network.loadingFailed"
    ]
    assert errors == []
    requested = {
        e["params"]["request"]["url"]
        for e in browser.events
        if e.get("method") == "Network.requestWillBeSent"
    }
    assert all(u == url or u.startswith("data:") for u in requested), requested
    png = base64.b64decode(screenshot["data"])
    assert png.startswith(b"\x89PNG")
    keep = os.environ.get("SCONES_MONITOR_SCREENSHOT")
    if keep:
        Path(keep).write_bytes(png)
