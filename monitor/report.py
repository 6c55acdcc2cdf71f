"""The monitor's numbers, its charts (drawn with Pillow alone) and one self-contained HTML report."""

from __future__ import annotations

import base64
import hashlib
import html
import io
import math
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from monitor.read import Capture, CapturedInference
from scones_common.constants import DEFAULT_CONFIDENCE_THRESHOLD

DEFAULT_THRESHOLD = DEFAULT_CONFIDENCE_THRESHOLD  # ConfidenceThreshold's default in template.yaml
GALLERY_SIZE = 12
THUMBNAIL = 128

UNREADABLE = "(unreadable answer)"
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
_LOW = "#d62728"
_GREY = "#7f7f7f"
_AXIS = "#333333"
_GRID = "#e6e6e6"
# Tick and bin steps for a time axis, in seconds: 1 s up to 4 weeks.
_TIME_STEPS: tuple[int, ...] = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800)
_TIME_STEPS += (21600, 43200, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400)


# -- numbers -----------------------------------------------------------------------------------
@dataclass
class Summary:
    source: str
    endpoints: list[str]
    files: int
    records: int
    labels: dict[str, int]
    threshold: float
    with_confidence: int
    mean_confidence: float | None
    median_confidence: float | None
    min_confidence: float | None
    low_confidence: int
    low_confidence_rate: float | None  # over the records with a confidence
    first: datetime | None
    last: datetime | None
    skipped_lines: int
    problems: list[str] = field(default_factory=list)

    @property
    def span_seconds(self) -> float:
        return (self.last - self.first).total_seconds() if self.first and self.last else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "endpoints": self.endpoints,
            "files": self.files,
            "records": self.records,
            "labels": self.labels,
            "threshold": self.threshold,
            "mean_confidence": _round(self.mean_confidence),
            "median_confidence": _round(self.median_confidence),
            "min_confidence": _round(self.min_confidence),
            "low_confidence": self.low_confidence,
            "low_confidence_rate": _round(self.low_confidence_rate),
            "first": _iso(self.first),
            "last": _iso(self.last),
            "span_seconds": round(self.span_seconds, 3),
            "skipped_lines": self.skipped_lines,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def summarize(capture: Capture, threshold: float = DEFAULT_THRESHOLD) -> Summary:
    records = capture.records
    confidences = [r.confidence for r in records if r.confidence is not None]
    low = sum(1 for c in confidences if c < threshold)  # FilterInferences rejects below, not at
    labels = Counter(r.label or UNREADABLE for r in records)
    return Summary(
        source=f"s3://{capture.bucket}/{capture.prefix}",
        endpoints=sorted({r.endpoint for r in records if r.endpoint}),
        files=len(capture.files),
        records=len(records),
        labels=dict(sorted(labels.items())),
        threshold=threshold,
        with_confidence=len(confidences),
        mean_confidence=statistics.fmean(confidences) if confidences else None,
        median_confidence=statistics.median(confidences) if confidences else None,
        min_confidence=min(confidences) if confidences else None,
        low_confidence=low,
        low_confidence_rate=low / len(confidences) if confidences else None,
        first=records[0].time if records else None,
        last=records[-1].time if records else None,
        skipped_lines=len(capture.problems),
        problems=list(capture.problems),
    )


def label_colors(records: Sequence[CapturedInference]) -> dict[str, str]:
    names = sorted({r.label for r in records if r.label})
    colors = {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(names)}
    colors[UNREADABLE] = _GREY
    return colors


# -- drawing -----------------------------------------------------------------------------------
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _text_width(draw: ImageDraw.ImageDraw, text: str, font: Any) -> float:
    return float(draw.textlength(text, font=font))


def _nice_step(span: float, target: int) -> float:
    """A 1-2-5 step giving about `target` intervals over `span`."""
    raw = span / max(target, 1)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude


def _time_step(span: float, most: int) -> int:
    return next((s for s in _TIME_STEPS if span / s <= most), _TIME_STEPS[-1])


def _time_format(step: float) -> str:
    if step < 60:
        return "%H:%M:%S"
    if step < 86400:
        return "%H:%M"
    return "%m-%d"


class _Chart:
    """A titled plot area with a time x axis and a numeric y axis."""

    WIDTH, HEIGHT = 960, 380
    LEFT, RIGHT, TOP, BOTTOM = 78, 24, 52, 62

    def __init__(
        self,
        title: str,
        start: float,
        end: float,
        y_low: float,
        y_high: float,
        y_label: str,
        pad: float = 0.0,
    ) -> None:
        if end - start < 1.0:  # one instant: give the axis a second either side
            start, end = start - 1.0, end + 1.0
        # Points need a margin so the first and last do not sit on the frame; bars fill their bins.
        start, end = start - (end - start) * pad, end + (end - start) * pad
        self.start, self.end, self.y_low, self.y_high = start, end, y_low, y_high
        self.image = Image.new("RGB", (self.WIDTH, self.HEIGHT), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.font = _font(14)
        self.small = _font(12)
        self.x0, self.y0 = self.LEFT, self.TOP
        self.x1, self.y1 = self.WIDTH - self.RIGHT, self.HEIGHT - self.BOTTOM
        self.draw.text((self.LEFT, 14), title, fill=_AXIS, font=_font(18))
        self._y_label = y_label

    def x(self, seconds: float) -> float:
        return self.x0 + (seconds - self.start) / (self.end - self.start) * (self.x1 - self.x0)

    def y(self, value: float) -> float:
        return self.y1 - (value - self.y_low) / (self.y_high - self.y_low) * (self.y1 - self.y0)

    def axes(self, y_step: float, y_format: Callable[[float], str]) -> None:
        draw = self.draw
        value = self.y_low
        while value <= self.y_high + y_step / 1000:
            y = self.y(value)
            draw.line([(self.x0, y), (self.x1, y)], fill=_GRID)
            draw.line([(self.x0 - 5, y), (self.x0, y)], fill=_AXIS)
            label = y_format(value)
            draw.text((self.x0 - 8, y), label, fill=_AXIS, font=self.small, anchor="rm")
            value += y_step
        step = _time_step(self.end - self.start, 8)
        tick = math.ceil(self.start / step) * step
        fmt = _time_format(step)
        while tick <= self.end:
            x = self.x(tick)
            draw.line([(x, self.y0), (x, self.y1)], fill=_GRID)
            draw.line([(x, self.y1), (x, self.y1 + 5)], fill=_AXIS)
            when = datetime.fromtimestamp(tick, UTC)
            draw.text((x, self.y1 + 8), when.strftime(fmt), fill=_AXIS, font=self.small, anchor="mt")
            tick += step
        draw.rectangle([self.x0, self.y0, self.x1, self.y1], outline=_AXIS)
        first = datetime.fromtimestamp(self.start, UTC)
        last = datetime.fromtimestamp(self.end, UTC)
        dates = f"{first:%Y-%m-%d}" if first.date() == last.date() else f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"
        caption = f"time (UTC), {dates}"
        draw.text(
            ((self.x0 + self.x1) / 2, self.HEIGHT - 8), caption, fill=_AXIS, font=self.font, anchor="mb"
        )
        label_image = Image.new("RGBA", (int(self.y1 - self.y0), 20), (255, 255, 255, 0))
        ImageDraw.Draw(label_image).text(
            (label_image.width / 2, 10), self._y_label, fill=_AXIS, font=self.font, anchor="mm"
        )
        rotated = label_image.rotate(90, expand=True)
        self.image.paste(rotated, (6, int(self.y0)), rotated)

    def dashed_hline(self, value: float, color: str) -> None:
        y = self.y(value)
        x = float(self.x0)
        while x < self.x1:
            self.draw.line([(x, y), (min(x + 10, self.x1), y)], fill=color, width=2)
            x += 16

    def legend(self, entries: Sequence[tuple[str, str, str]]) -> None:
        """(name, color, style) on the title line, right-aligned; style is box, ring or dash."""
        x = float(self.x1)
        for name, color, style in reversed(entries):
            x -= _text_width(self.draw, name, self.font)
            self.draw.text((x, 22), name, fill=_AXIS, font=self.font, anchor="lm")
            if style == "dash":
                x -= 30
                self.draw.line([(x, 22), (x + 10, 22)], fill=color, width=2)
                self.draw.line([(x + 14, 22), (x + 24, 22)], fill=color, width=2)
            elif style == "ring":
                x -= 18
                self.draw.ellipse([x, 16, x + 12, 28], fill="white", outline=color, width=2)
            else:
                x -= 18
                self.draw.rectangle([x, 16, x + 12, 28], fill=color)
            x -= 18

    def png(self) -> bytes:
        return _png(self.image)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _span(records: Sequence[CapturedInference]) -> tuple[float, float]:
    times = [r.time.timestamp() for r in records]
    return (min(times), max(times)) if times else (0.0, 1.0)


def confidence_chart(records: Sequence[CapturedInference], threshold: float) -> bytes:
    """Each answer's confidence at its time; the threshold dashed; below-threshold points ringed red."""
    scored = [r for r in records if r.confidence is not None]
    lowest = min([threshold, *(r.confidence for r in scored if r.confidence is not None)])
    y_low = 0.5 if lowest >= 0.5 else math.floor(lowest * 10) / 10
    start, end = _span(records)
    chart = _Chart("Confidence over time", start, end, y_low, 1.0, "confidence", pad=0.03)
    chart.axes(0.05 if y_low >= 0.5 else 0.1, lambda v: f"{v:.2f}")
    points = [(chart.x(r.time.timestamp()), chart.y(float(r.confidence or 0))) for r in scored]
    if len(points) > 1:
        chart.draw.line(points, fill="#b0b0b0", width=1)
    colors = label_colors(records)
    for record, (x, y) in zip(scored, points, strict=True):
        below = (record.confidence or 0) < threshold
        radius = 5
        chart.draw.ellipse(
            [x - radius, y - radius, x + radius, y + radius],
            fill=colors.get(record.label or UNREADABLE, _GREY),
            outline=_LOW if below else "white",
            width=2,
        )
    chart.dashed_hline(threshold, _LOW)
    names = [n for n in colors if n != UNREADABLE and any(r.label == n for r in scored)]
    chart.legend(
        [(name, colors[name], "box") for name in names]
        + [("below threshold", _LOW, "ring"), (f"threshold {threshold:.2f}", _LOW, "dash")]
    )
    return chart.png()


@dataclass
class _Bin:
    start: float
    counts: Counter[str]
    low: int
    scored: int


def _bins(records: Sequence[CapturedInference], threshold: float) -> tuple[list[_Bin], float]:
    start, end = _span(records)
    step = float(_time_step(max(end - start, 1.0), 12))
    first = math.floor(start / step) * step
    count = int((end - first) // step) + 1
    bins = [_Bin(first + i * step, Counter(), 0, 0) for i in range(count)]
    for record in records:
        index = min(int((record.time.timestamp() - first) // step), count - 1)
        bins[index].counts[record.label or UNREADABLE] += 1
        if record.confidence is not None:
            bins[index].scored += 1
            bins[index].low += record.confidence < threshold
    return bins, step


def label_mix_chart(records: Sequence[CapturedInference], threshold: float) -> bytes:
    """Answers per time bin, stacked by label."""
    bins, step = _bins(records, threshold)
    tallest = max((sum(b.counts.values()) for b in bins), default=1)
    y_step = max(1.0, _nice_step(tallest, 5))
    y_high = math.ceil(tallest / y_step) * y_step
    chart = _Chart(
        f"Label mix over time ({_duration(step)} bins)",
        bins[0].start,
        bins[-1].start + step,
        0,
        y_high,
        "answers",
    )
    chart.axes(y_step, lambda v: f"{v:.0f}")
    colors = label_colors(records)
    order = [name for name in colors if any(b.counts[name] for b in bins)]
    for time_bin in bins:
        left, right = chart.x(time_bin.start + step * 0.1), chart.x(time_bin.start + step * 0.9)
        base = 0
        for name in order:
            n = time_bin.counts[name]
            if n:
                chart.draw.rectangle([left, chart.y(base + n), right, chart.y(base)], fill=colors[name])
                base += n
    chart.legend([(name, colors[name], "box") for name in order])
    return chart.png()


def low_confidence_chart(records: Sequence[CapturedInference], threshold: float, rate: float | None) -> bytes:
    """Share of answers below the threshold per time bin; the overall rate dashed."""
    bins, step = _bins(records, threshold)
    chart = _Chart(
        f"Low-confidence rate (confidence < {threshold:.2f}, {_duration(step)} bins)",
        bins[0].start,
        bins[-1].start + step,
        0,
        1,
        "share of answers",
    )
    chart.axes(0.2, lambda v: f"{v:.0%}")
    for time_bin in bins:
        if not time_bin.scored:
            continue
        left, right = chart.x(time_bin.start + step * 0.1), chart.x(time_bin.start + step * 0.9)
        share = time_bin.low / time_bin.scored
        chart.draw.rectangle([left, chart.y(share), right, chart.y(0)], fill="#f4a3a3", outline=_LOW)
        if right - left > 30:
            chart.draw.text(
                ((left + right) / 2, chart.y(share) - 3),
                f"{time_bin.low}/{time_bin.scored}",
                fill=_AXIS,
                font=chart.small,
                anchor="mb",
            )
    if rate is not None:
        chart.dashed_hline(rate, _AXIS)
        chart.legend([("below threshold", "#f4a3a3", "box"), (f"overall {rate:.1%}", _AXIS, "dash")])
    return chart.png()


def _duration(seconds: float, *, precise: bool = False) -> str:
    """'5 min' in chart titles; precise (summary table): one decimal, units switched at twice the size."""
    digits = 1 if precise else 0
    minute, hour, day = (120, 7200, 172800) if precise else (60, 3600, 86400)
    if seconds < minute:
        return f"{seconds:.{digits}f} s"
    if seconds < hour:
        return f"{seconds / 60:.{digits}f} min"
    if seconds < day:
        return f"{seconds / 3600:.{digits}f} h"
    return f"{seconds / 86400:.{digits}f} {'days' if precise else 'd'}"


# -- gallery -----------------------------------------------------------------------------------
@dataclass
class GalleryItem:
    record: CapturedInference
    thumbnail: Image.Image | None  # None when the captured input is not a decodable image
    repeats: int  # how many captured requests carried these same bytes


def least_confident(records: Sequence[CapturedInference], size: int = GALLERY_SIZE) -> list[GalleryItem]:
    """The least confident answers, one per distinct input (a repeated image appears once)."""
    seen: dict[str, list[CapturedInference]] = {}
    for record in records:
        if record.confidence is not None:
            seen.setdefault(hashlib.sha256(record.input_data).hexdigest(), []).append(record)

    def rank(record: CapturedInference) -> tuple[float, float]:
        return (record.confidence if record.confidence is not None else 0.0, record.time.timestamp())

    lowest = sorted(((min(group, key=rank), len(group)) for group in seen.values()), key=lambda p: rank(p[0]))
    return [GalleryItem(record, thumbnail(record.input_data), n) for record, n in lowest[:size]]


def thumbnail(data: bytes, size: int = THUMBNAIL) -> Image.Image | None:
    """The captured bytes decoded safely (they are untrusted) and fitted to size×size."""
    from scones_common.exceptions import InvalidImageError, UnsupportedImageFormatError
    from scones_common.images import decode_image

    try:
        image = decode_image(data)
    except (InvalidImageError, UnsupportedImageFormatError):
        return None
    scale = size / max(image.width, image.height)
    target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # Upscale CIFAR's 32×32 pixels as crisp blocks; shrink photos smoothly.
    resample = Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.LANCZOS
    return image.resize(target, resample)


def _placeholder(size: int = THUMBNAIL) -> Image.Image:
    tile = Image.new("RGB", (size, size), "#eeeeee")
    ImageDraw.Draw(tile).text((size / 2, size / 2), "not an image", fill=_GREY, font=_font(13), anchor="mm")
    return tile


def _caption(item: GalleryItem) -> list[str]:
    record = item.record
    lines = [f"{record.label} {record.confidence:.3f}", f"{record.time:%Y-%m-%d %H:%M:%S} UTC"]
    if item.repeats > 1:
        lines.append(f"sent {item.repeats} times")
    return lines


def gallery_sheet(items: Sequence[GalleryItem], threshold: float, columns: int = 6) -> bytes:
    """The gallery as one PNG contact sheet, captions under each image."""
    tile_w, tile_h, pad = THUMBNAIL + 32, THUMBNAIL + 74, 10
    rows = max(1, math.ceil(len(items) / columns))
    width = columns * tile_w + pad * 2
    sheet = Image.new("RGB", (width, rows * tile_h + 44), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text(
        (pad + 6, 12), f"Least confident images (threshold {threshold:.2f})", fill=_AXIS, font=_font(18)
    )
    font = _font(12)
    if not items:
        draw.text((pad + 6, 60), "no answers with a confidence were captured", fill=_GREY, font=font)
    for index, item in enumerate(items):
        left = pad + (index % columns) * tile_w
        top = 44 + (index // columns) * tile_h
        image = item.thumbnail or _placeholder()
        x = left + (tile_w - image.width) // 2
        y = top + (THUMBNAIL - image.height) // 2
        sheet.paste(image, (x, y))
        below = (item.record.confidence or 0.0) < threshold
        draw.rectangle(
            [x - 2, y - 2, x + image.width + 1, y + image.height + 1],
            outline=_LOW if below else _GRID,
            width=2,
        )
        for n, line in enumerate(_caption(item)):
            color = (_LOW if below else _AXIS) if n == 0 else _GREY
            draw.text(
                (left + tile_w / 2, top + THUMBNAIL + 8 + n * 16), line, fill=color, font=font, anchor="mt"
            )
    return _png(sheet)


# -- the report --------------------------------------------------------------------------------
@dataclass
class ReportFiles:
    html: Path
    charts: dict[str, Path]


_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #222; margin: 24px auto; max-width: 1000px; padding: 0 16px; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 19px; margin-top: 32px; }
.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 12px 0; }
th, td { border: 1px solid #d0d0d0; padding: 5px 12px; text-align: left; }
th { background: #f3f3f3; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure.chart { width: auto; margin: 0 0 22px; text-align: left; color: #555; }
figure.chart img { max-width: 100%; height: auto; border: 1px solid #e0e0e0; image-rendering: auto; }
.gallery { display: flex; flex-wrap: wrap; gap: 14px; }
.gallery figure { margin: 0; width: 150px; text-align: center; font-size: 13px; }
.gallery figure img { image-rendering: pixelated; border: 2px solid #e6e6e6; }
.gallery figure.low img { border-color: #d62728; }
figure.low .conf { color: #d62728; font-weight: 600; }
figcaption span { display: block; } .when { color: #666; font-size: 12px; }
.problems { color: #8a4b00; }
"""


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _fmt(value: float | None, pattern: str = "{:.3f}") -> str:
    return "–" if value is None else pattern.format(value)


def summary_rows(summary: Summary) -> list[tuple[str, str]]:
    """The summary as (metric, value) rows: the terminal table and the HTML table show the same."""
    rows = [
        ("records", f"{summary.records:,} in {summary.files:,} file{'s' if summary.files != 1 else ''}"),
        ("endpoint", ", ".join(summary.endpoints) or "–"),
    ]
    for label, count in summary.labels.items():
        share = count / summary.records if summary.records else 0.0
        rows.append((f"label {label}", f"{count:,} ({share:.0%})"))
    rows += [
        ("mean confidence", _fmt(summary.mean_confidence)),
        ("median confidence", _fmt(summary.median_confidence)),
        ("lowest confidence", _fmt(summary.min_confidence)),
        (
            "low-confidence rate",
            f"{_fmt(summary.low_confidence_rate, '{:.1%}')} ({summary.low_confidence:,} of "
            f"{summary.with_confidence:,} below {summary.threshold:.2f})",
        ),
        ("first record", f"{summary.first:%Y-%m-%d %H:%M:%S} UTC" if summary.first else "–"),
        ("last record", f"{summary.last:%Y-%m-%d %H:%M:%S} UTC" if summary.last else "–"),
        ("time span", _duration(summary.span_seconds, precise=True)),
    ]
    if summary.skipped_lines:
        rows.append(("skipped lines", f"{summary.skipped_lines:,} (not capture records)"))
    return rows


def render_html(summary: Summary, charts: dict[str, bytes], gallery: Sequence[GalleryItem]) -> str:
    e = html.escape
    title = f"Endpoint monitor: {', '.join(summary.endpoints) or summary.source}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',  # no favicon request: the page loads nothing from outside
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f'<p class="meta">SageMaker data capture read from <code>{e(summary.source)}</code>; '
        f"report generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.</p>",
        "<table><tr><th>metric</th><th>value</th></tr>",
    ]
    parts += [f'<tr><td>{e(k)}</td><td class="num">{e(v)}</td></tr>' for k, v in summary_rows(summary)]
    parts.append("</table>")
    captions = {
        "confidence": "Each answer's top probability; the dashed line is the threshold, "
        "red rings fall below it.",
        "label_mix": "Answers per time bin, stacked by the label the model gave.",
        "low_confidence": "Share of each bin's answers below the threshold; "
        "the dashed line is the overall rate.",
    }
    parts.append("<h2>Over time</h2>")
    for name, png in charts.items():
        caption = captions.get(name, name)
        with Image.open(io.BytesIO(png)) as chart:
            width, height = chart.size
        parts.append(
            f'<figure class="chart"><img src="{_data_uri(png)}" width="{width}" height="{height}" '
            f'alt="{e(name.replace("_", " "))} chart"><figcaption>{e(caption)}</figcaption></figure>'
        )
    parts.append(f"<h2>Least confident images ({len(gallery)}, times in UTC)</h2>")
    if not gallery:
        parts.append("<p>No answers with a confidence were captured.</p>")
    parts.append('<div class="gallery">')
    for item in gallery:
        record = item.record
        low = (record.confidence or 0.0) < summary.threshold
        image = item.thumbnail or _placeholder()
        alt = f"captured input {record.event_id}"
        repeats = f"<span>sent {item.repeats} times</span>" if item.repeats > 1 else ""
        parts.append(
            f'<figure class="{"low" if low else "ok"}"><img src="{_data_uri(_png(image))}" '
            f'width="{image.width}" height="{image.height}" alt="{e(alt)}">'
            f'<figcaption><span class="conf">{e(str(record.label))} {record.confidence:.3f}</span>'
            f'<span class="when">{record.time:%Y-%m-%d %H:%M:%S}</span>{repeats}</figcaption></figure>'
        )
    parts.append("</div>")
    if summary.problems:
        parts.append("<h2>Skipped lines</h2><ul class='problems'>")
        parts += [f"<li><code>{e(p)}</code></li>" for p in summary.problems[:50]]
        if len(summary.problems) > 50:
            parts.append(f"<li>… and {len(summary.problems) - 50} more</li>")
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(
    capture: Capture, summary: Summary, out_dir: Path, gallery_size: int = GALLERY_SIZE
) -> ReportFiles:
    """confidence.png, label_mix.png, low_confidence.png, gallery.png and report.html in out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records, threshold = capture.records, summary.threshold
    charts = {
        "confidence": confidence_chart(records, threshold),
        "label_mix": label_mix_chart(records, threshold),
        "low_confidence": low_confidence_chart(records, threshold, summary.low_confidence_rate),
    }
    gallery = least_confident(records, gallery_size)
    paths: dict[str, Path] = {}
    for name, png in {**charts, "gallery": gallery_sheet(gallery, threshold)}.items():
        paths[name] = out_dir / f"{name}.png"
        paths[name].write_bytes(png)
    report = out_dir / "report.html"
    report.write_text(render_html(summary, charts, gallery), encoding="utf-8")
    return ReportFiles(html=report, charts=paths)
