"""A PNG of a page, taken by headless Chromium's own `--screenshot` (the README's picture of the view)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.errors import ToolError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def screenshot(page: Path, png: Path, *, width: int = 1300, height: int = 1500) -> Path:
    """The top `width`×`height` pixels of `page` as `png` (SCONES_CHROMIUM names the browser if needed)."""
    browser = os.environ.get("SCONES_CHROMIUM") or next((b for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        raise ToolError("no Chromium for --screenshot: apt-get install chromium, or set SCONES_CHROMIUM")
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        completed = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--screenshot={png.resolve()}",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=False,
        )
    if completed.returncode != 0 or not png.is_file():
        raise ToolError(f"Chromium took no screenshot: {completed.stderr.decode(errors='replace')[-300:]}")
    return png
