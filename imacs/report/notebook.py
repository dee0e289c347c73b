"""How a comparison shows itself in a notebook: a compact HTML summary.

Light on purpose: inline styles and inline SVG bars. The only things read from the store
are a few small thumbnails per cluster, and only when the store is there: a comparison
loaded from a folder without its images shows the same summary without them. Every
string that comes from the comparison (model names, class names, settings) is escaped.
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING, Any

from imacs.report.headline import headline
from imacs.report.naming import cluster_labels, model_label
from imacs.report.style import COLOR_A, COLOR_B, COLOR_NEUTRAL, format_q

if TYPE_CHECKING:
    from imacs.comparison.result import Comparison

#: clusters listed in the summary
TOP = 10

_DOT = " \u00b7 "
_BAR_WIDTH = 160
_BAR_HEIGHT = 18
_CELL = "padding:3px 8px;text-align:left;vertical-align:middle;"
_NUMBER = "padding:3px 8px;text-align:right;vertical-align:middle;white-space:nowrap;"


def summary_html(comparison: Comparison, *, top: int = TOP) -> str:
    """A self-contained HTML summary: both models, agreement and the ``top`` clusters.

    Each cluster row has its name in words, thumbnails of its regions (when the store is
    there; outlined in the colour of the model that puts more attribution on them), an
    inline SVG bar of B - A with its confidence interval, in B's colour where B relies
    more and A's where A does (unfilled when not significant), the q-value, the support,
    each model's accuracy on the cluster's images, what hiding the regions does to each
    model's probability for its target, and the class most of its regions come from.
    """
    summary = comparison.summary()
    clusters = comparison.clusters.head(top)
    method = comparison.settings.get("method", {})
    method_name = method.get("name") if isinstance(method, dict) else method
    alpha = comparison.settings.get("alpha", 0.05)
    heading = f"imacs comparison of {summary['n_images']} images"
    if method_name:
        heading += f" \u00b7 {method_name}"
    facts = [f"predictions agree on {_percent(summary['agreement'])} of images"]
    if "spearman" in comparison.images and len(comparison.images):
        facts.append(f"median Spearman of the maps {comparison.images['spearman'].median():.2f}")
    facts.append(
        f"{summary['n_regions']} salient regions in {summary['n_clusters']} clusters, "
        f"{summary['significant_clusters']} with a significant difference (q \u2264 {alpha:g})"
    )
    parts = [
        '<div class="imacs-comparison" style="font-family:system-ui,-apple-system,'
        'Segoe UI,Helvetica,Arial,sans-serif;font-size:13px;line-height:1.4;max-width:60em">',
        f'<div style="font-weight:600;font-size:15px;margin-bottom:4px">{escape(heading)}</div>',
        *_alerts(comparison),
        f'<div style="margin:4px 0 6px">{escape(headline(comparison))}</div>',
        _models_table(comparison, summary),
        f'<div style="margin:6px 0">{escape(_DOT.join(facts))}</div>',
        *_quality(comparison),
        _clusters_table(comparison, clusters),
        f'<div style="color:{COLOR_NEUTRAL};margin-top:4px">'
        + escape(
            f"Top {len(clusters)} of {summary['n_clusters']} clusters, ranked by how far "
            "the interval of B \u2212 A (the share of each image's attribution) lies from 0; "
            "* marks a significant difference of at least "
            f"{comparison.settings.get('min_effect')}. "
            "comparison.save(folder) writes the HTML report, figures and tables."
        )
        + "</div>",
        "</div>",
    ]
    return "\n".join(parts)


def _quality(comparison: Comparison) -> list[str]:
    """The line on whether each model's maps pass the sanity check, when quality ran."""
    from imacs.report.quality import quality_line

    line = quality_line(comparison)
    if line is None:
        return []
    return [f'<div class="imacs-quality" style="margin:6px 0">{escape(line)}</div>']


#: border and background of an alert, by severity
_ALERT_COLOURS = {"error": ("#b42318", "#fef3f2"), "warning": ("#b54708", "#fffaeb")}


def _alerts(comparison: Comparison) -> list[str]:
    """One box per alert, errors first, above everything else the summary shows."""
    alerts = sorted(comparison.alerts, key=lambda alert: alert.severity != "error")
    boxes = []
    for alert in alerts:
        border, background = _ALERT_COLOURS.get(alert.severity, _ALERT_COLOURS["warning"])
        boxes.append(
            f'<div class="imacs-alert" style="border-left:4px solid {border};'
            f'background:{background};padding:4px 8px;margin:4px 0">'
            f'<span style="font-weight:600;color:{border}">{escape(alert.severity)}</span> '
            f"{escape(alert.message)} "
            f'<code style="color:{COLOR_NEUTRAL}">{escape(alert.code)}</code></div>'
        )
    return boxes


def difference_colour(difference: float) -> str:
    """B's colour where B relies more (B - A > 0), A's where A does, grey at zero."""
    if difference > 0:
        return COLOR_B
    if difference < 0:
        return COLOR_A
    return COLOR_NEUTRAL


def _percent(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{100 * value:.1f}%"


def _swatch(colour: str) -> str:
    return (
        f'<span style="display:inline-block;width:0.8em;height:0.8em;background:{colour};'
        'margin-right:4px;vertical-align:baseline"></span>'
    )


def _models_table(comparison: Comparison, summary: dict[str, Any]) -> str:
    rows = []
    for side, colour in (("a", COLOR_A), ("b", COLOR_B)):
        model = comparison.models.get(side, {})
        # framework and adapter, once when they are the same word
        detail = ", ".join(
            dict.fromkeys(
                str(model[key]) for key in ("framework", "adapter") if model.get(key) is not None
            )
        )
        rows.append(
            "<tr>"
            f'<td style="{_CELL}font-weight:600">{_swatch(colour)}{side.upper()}</td>'
            f'<td style="{_CELL}">{escape(model_label(comparison, side))}</td>'
            f'<td style="{_CELL}color:{COLOR_NEUTRAL}">{escape(detail)}</td>'
            f'<td style="{_NUMBER}">accuracy {_percent(summary[f"accuracy_{side}"])}</td>'
            "</tr>"
        )
    return '<table style="border-collapse:collapse">' + "".join(rows) + "</table>"


def _clusters_table(comparison: Comparison, clusters: Any) -> str:
    if clusters.empty:
        return "<div>No clusters.</div>"
    bounds = [
        abs(float(v))
        for column in ("difference", "ci_low", "ci_high")
        for v in clusters[column]
        if math.isfinite(float(v))
    ]
    limit = max(bounds, default=0.0) or 1.0
    classes = _main_classes(comparison)
    names = cluster_labels(comparison)
    thumbnails = _thumbnails(comparison, clusters) if comparison.has_store else {}
    header = "".join(
        f'<th style="{style}border-bottom:1px solid #ccc">{escape(text)}</th>'
        for text, style in (
            ("rank", _NUMBER),
            ("cluster", _NUMBER),
            ("name", _CELL),
            *((("examples", _CELL),) if thumbnails else ()),
            ("B \u2212 A", _CELL),
            ("difference [CI]", _NUMBER),
            ("q", _NUMBER),
            ("regions / images", _NUMBER),
            ("accuracy A / B", _NUMBER),
            ("hiding: drop A / B", _NUMBER),
            ("main class", _CELL),
        )
    )
    rows = []
    for row in clusters.itertuples(index=False):
        difference = float(row.difference)
        significant = bool(row.significant)
        starred = bool(getattr(row, "meaningful", significant))
        q_text = format_q(float(row.q_value)) + (" *" if starred else "")
        q_style = "font-weight:600;" if significant else f"color:{COLOR_NEUTRAL};"
        rows.append(
            "<tr>"
            f'<td style="{_NUMBER}">{int(row.rank)}</td>'
            f'<td style="{_NUMBER}">{int(row.cluster)}</td>'
            f'<td style="{_CELL}">{escape(names.get(int(row.cluster), ""))}</td>'
            + (
                f'<td style="{_CELL}white-space:nowrap">{thumbnails.get(int(row.cluster), "")}</td>'
                if thumbnails
                else ""
            )
            + f'<td style="{_CELL}">{_bar(row, limit)}</td>'
            f'<td style="{_NUMBER}">{difference:+.4f} '
            f"[{float(row.ci_low):+.4f}, {float(row.ci_high):+.4f}]</td>"
            f'<td style="{_NUMBER}{q_style}">{escape(q_text)}</td>'
            f'<td style="{_NUMBER}">{int(row.n_regions)} / {int(row.n_images)}</td>'
            f'<td style="{_NUMBER}">{_percent(float(getattr(row, "accuracy_a", math.nan)))} / '
            f"{_percent(float(getattr(row, 'accuracy_b', math.nan)))}</td>"
            f'<td style="{_NUMBER}">{escape(_causal(row))}</td>'
            f'<td style="{_CELL}white-space:nowrap">'
            f"{escape(classes.get(int(row.cluster), ''))}</td>"
            "</tr>"
        )
    return (
        '<table style="border-collapse:collapse;margin-top:4px">'
        f"<thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


#: thumbnails per cluster row, and their side in pixels
THUMBNAILS = 3
_THUMB = 40


def _thumbnails(comparison: Comparison, clusters: Any) -> dict[int, str]:
    """Per cluster, inline PNGs of its regions with the most attribution, one per image.

    Each is a square crop around the region, the region outlined in the colour of the
    model that puts more attribution on it (the report's and the figures' rule).
    """
    import base64

    regions = comparison.regions
    weight = regions["abs_a"] + regions["abs_b"] if "abs_a" in regions else regions["area"]
    ordered = regions.assign(_weight=-weight).sort_values(["cluster", "_weight", "image"])
    result = {}
    for cluster in (int(c) for c in clusters["cluster"]):
        chosen = ordered[ordered["cluster"] == cluster].drop_duplicates("image").head(THUMBNAILS)
        images = []
        for region in chosen.itertuples(index=False):
            png = _thumbnail_png(comparison, region)
            source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            images.append(
                f'<img src="{source}" width="{_THUMB}" height="{_THUMB}" '
                f'alt="{escape(str(comparison.images["name"].iloc[int(region.image)]))}" '
                'style="margin-right:2px;vertical-align:middle;image-rendering:pixelated"/>'
            )
        result[cluster] = "".join(images)
    return result


def _thumbnail_png(comparison: Comparison, region: Any) -> bytes:
    import numpy as np
    from PIL import Image

    from imacs.report.images import encode, image_pixels
    from imacs.report.style import hex_to_rgb

    image = np.asarray(comparison.image(int(region.image)))
    segments = np.asarray(comparison.segments(int(region.image)))
    height, width = segments.shape
    side = min(
        max(int(region.y1) - int(region.y0), int(region.x1) - int(region.x0)) * 2, height, width
    )
    side = max(side, min(8, height, width))
    top = int(np.clip((int(region.y0) + int(region.y1) - side) // 2, 0, height - side))
    left = int(np.clip((int(region.x0) + int(region.x1) - side) // 2, 0, width - side))
    crop = image[top : top + side, left : left + side]
    pixels = image_pixels(crop, (side, side))
    zoom = max(1, _THUMB // side)
    if zoom > 1:
        pixels = np.asarray(
            Image.fromarray(pixels).resize((side * zoom, side * zoom), Image.Resampling.NEAREST)
        )
    mask = segments[top : top + side, left : left + side] == int(region.region)
    mask = np.kron(mask, np.ones((zoom, zoom), dtype=bool))
    padded = np.pad(mask, 1)
    inside = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    edge = mask & ~inside
    pixels = pixels.copy()
    pixels[edge] = hex_to_rgb(difference_colour(float(region.mass_b) - float(region.mass_a)))
    return encode(pixels)


def _causal(row: Any) -> str:
    """Each model's drop in target probability when the regions are hidden, if checked."""
    if not int(getattr(row, "causal_images", 0) or 0):
        return "not checked"
    return f"{float(row.causal_drop_a):+.2f} / {float(row.causal_drop_b):+.2f}"


def _bar(row: Any, limit: float) -> str:
    """An inline SVG: the difference as a bar from zero, its interval as a whisker."""
    difference = float(row.difference)
    colour = difference_colour(difference)
    half = _BAR_WIDTH / 2
    scale = (half - 4) / limit

    def x(value: float) -> float:
        return half + (value if math.isfinite(value) else difference) * scale

    start, end = sorted((x(0.0), x(difference)))
    low, high = sorted((x(float(row.ci_low)), x(float(row.ci_high))))
    middle = _BAR_HEIGHT / 2
    fill = colour if row.significant else "white"
    title = (
        f"B \u2212 A = {difference:+.4f}, interval [{float(row.ci_low):+.4f}, "
        f"{float(row.ci_high):+.4f}]" + ("" if row.significant else ", not significant")
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_BAR_WIDTH}" height="{_BAR_HEIGHT}" '
        f'viewBox="0 0 {_BAR_WIDTH} {_BAR_HEIGHT}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        f'<rect x="{start:.1f}" y="4" width="{max(end - start, 0.5):.1f}" height="10" '
        f'fill="{fill}" stroke="{colour}" stroke-width="1.2"/>'
        f'<line x1="{half}" y1="1" x2="{half}" y2="{_BAR_HEIGHT - 1}" stroke="#444"/>'
        f'<line x1="{low:.1f}" y1="{middle}" x2="{high:.1f}" y2="{middle}" stroke="#222" '
        'stroke-width="1.2"/>'
        f'<line x1="{low:.1f}" y1="5" x2="{low:.1f}" y2="13" stroke="#222" stroke-width="1.2"/>'
        f'<line x1="{high:.1f}" y1="5" x2="{high:.1f}" y2="13" stroke="#222" '
        'stroke-width="1.2"/>'
        "</svg>"
    )


def _main_classes(comparison: Comparison) -> dict[int, str]:
    """Per cluster, the class most of its regions come from, with its share."""
    classes = comparison.classes
    if classes is None or classes.empty or "label" not in classes:
        return {}
    names = comparison.dataset.get("class_names")
    labelled = classes[classes["label"] >= 0]
    result = {}
    for cluster, group in labelled.groupby("cluster", sort=False):
        best = group.sort_values(["n_regions", "label"], ascending=[False, True]).iloc[0]
        label = int(best["label"])
        if "class_name" in group:
            name = str(best["class_name"])
        elif names and label < len(names):
            name = str(names[label])
        else:
            name = str(label)
        total = int(classes.loc[classes["cluster"] == cluster, "n_regions"].sum())
        result[int(cluster)] = f"{name} ({100 * int(best['n_regions']) / total:.0f}%)"
    return result
