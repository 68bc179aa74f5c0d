"""Server-side SVG charts: geometry computed here, drawn by templates with SVG attributes
(no inline styles or scripts, which the Content-Security-Policy forbids)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 200, 36, 24, 10


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1
    step = 10 ** len(str(int(value))) / 10
    for factor in (1, 2, 2.5, 5, 10):
        if value <= step * factor:
            return step * factor
    return value


def runs_over_time_chart(
    buckets: dict[datetime, dict[str, int]], *, since: datetime, minutes: int
) -> dict[str, Any]:
    """Stacked bars (succeeded, failed, other) for every bucket from ``since`` to now."""
    from .selectors import bucket_start

    size = timedelta(minutes=minutes)
    start = bucket_start(since.astimezone(UTC), minutes)
    count = max(int((timezone.now() - start) / size) + 1, 1)
    peak = _nice_ceiling(max((row["total"] for row in buckets.values()), default=0))
    plot_width, plot_height = WIDTH - LEFT, HEIGHT - BOTTOM - TOP
    slot = plot_width / count
    bars, labels = [], []
    label_every = max(1, count // 8)
    for index in range(count):
        moment = start + index * size
        row = buckets.get(moment, {"total": 0, "succeeded": 0, "failed": 0})
        other = row["total"] - row["succeeded"] - row["failed"]
        x, y = LEFT + index * slot + slot * 0.15, TOP + plot_height
        segments = []
        for kind, value in (
            ("succeeded", row["succeeded"]),
            ("failed", row["failed"]),
            ("other", other),
        ):
            height = plot_height * value / peak
            if height:
                y -= height
                segments.append({"kind": kind, "y": round(y, 1), "height": round(height, 1)})
        local = timezone.localtime(moment)
        title = f"{local:%b %d %H:%M}: {row['total']} runs, {row['failed']} failed"
        bars.append(
            {"x": round(x, 1), "width": round(slot * 0.7, 1), "segments": segments, "title": title}
        )
        if index % label_every == 0:
            text = f"{local:%H:%M}" if count * minutes <= 48 * 60 else f"{local:%d %b}"
            labels.append({"x": round(x + slot * 0.35, 1), "text": text})
    ticks = [
        {"y": round(TOP + plot_height * (1 - fraction), 1), "value": round(peak * fraction)}
        for fraction in (0, 0.5, 1)
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "baseline": TOP + plot_height,
        "bars": bars,
        "labels": labels,
        "ticks": ticks,
        "empty": not buckets,
        "title": f"Runs per {minutes} minutes"
        if minutes < 60
        else f"Runs per {minutes // 60} hour{'s' if minutes > 60 else ''}",
    }


def latency_chart(latency: list[dict[str, Any]]) -> dict[str, Any]:
    """Horizontal bars per block type: p50 (solid), p95 (light), p99 (tick)."""
    # Drawn in a half-width card: a narrower canvas keeps its text at reading size.
    label_width, row_height, width = 130, 26, 480
    scale_max = max((row["p99"] or 0 for row in latency), default=0) or 1
    plot = width - label_width - 90
    rows = []
    for index, row in enumerate(latency):
        y = index * row_height + 4

        def scaled(value: float | None) -> float:
            return round(plot * (value or 0) / scale_max, 1)

        rows.append(
            {
                "block": row["block_type"],
                "y": y,
                "text_y": y + 13,
                "p50": scaled(row["p50"]),
                "p95": scaled(row["p95"]),
                "p99_x": round(label_width + scaled(row["p99"]), 1),
                "value_x": round(label_width + scaled(row["p99"]) + 6, 1),
                "p95_ms": row["p95"],
                "title": f"{row['block_type']}: p50 {row['p50']:.1f} ms, p95 {row['p95']:.1f} ms, "
                f"p99 {row['p99']:.1f} ms over {row['count']} attempts",
            }
        )
    return {
        "width": width,
        "height": max(len(rows) * row_height + 8, 40),
        "label_width": label_width,
        "rows": rows,
    }
