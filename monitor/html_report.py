"""The monitor's report: one self-contained HTML page (charts and images inline as data URIs, no script,
nothing loaded from outside), written with the chart and gallery PNGs next to it."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from monitor.charts import confidence_chart, label_mix_chart, low_confidence_chart
from monitor.gallery import GALLERY_SIZE, GalleryItem, gallery_sheet, least_confident, placeholder, png_bytes
from monitor.read import Capture
from monitor.summary import Summary, summary_rows


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


def render_html(
    summary: Summary,
    charts: dict[str, bytes],
    gallery: Sequence[GalleryItem],
    links: Mapping[str, str] | None = None,
) -> str:
    """The page; `links` maps a captured record's event id to its execution's page, where known."""
    e = html.escape
    links = links or {}
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
        image = item.thumbnail or placeholder()
        alt = f"captured input {record.event_id}"
        repeats = f"<span>sent {item.repeats} times</span>" if item.repeats > 1 else ""
        link = links.get(record.event_id)
        execution = f'<span class="execution"><a href="{e(link)}">execution</a></span>' if link else ""
        parts.append(
            f'<figure class="{"low" if low else "ok"}"><img src="{_data_uri(png_bytes(image))}" '
            f'width="{image.width}" height="{image.height}" alt="{e(alt)}">'
            f'<figcaption><span class="conf">{e(str(record.label))} {record.confidence:.3f}</span>'
            f'<span class="when">{record.time:%Y-%m-%d %H:%M:%S}</span>{repeats}{execution}'
            "</figcaption></figure>"
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
    capture: Capture,
    summary: Summary,
    out_dir: Path,
    gallery_size: int = GALLERY_SIZE,
    links: Mapping[str, str] | None = None,
) -> ReportFiles:
    """confidence.png, label_mix.png, low_confidence.png, gallery.png and report.html in out_dir; each
    gallery image links to its execution where `links` (event id -> URL) knows it."""
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
    report.write_text(render_html(summary, charts, gallery, links), encoding="utf-8")
    return ReportFiles(html=report, charts=paths)
