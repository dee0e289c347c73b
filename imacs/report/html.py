"""The comparison report: one self-contained HTML file that opens from disk.

:func:`write_report` writes the page. The tables travel as JSON in
``<script type="application/json">`` blocks, and every image as two small pictures: the
image itself, and one PNG with its label map and both maps (see
:mod:`imacs.report.images`). The browser colours the maps, takes their difference,
outlines regions and crops thumbnails on canvas, and only for what is on screen: the
cluster list draws its exemplars as they scroll into view, and a cluster shows one page
of region tiles at a time. So the page stays responsive with dozens of clusters and
thousands of images, and the file grows by a few kilobytes per image (4 KiB for the
32x32 demo digits).

Nothing is fetched: no fonts, no scripts, no images from anywhere but the file itself,
and a Content-Security-Policy forbids it. Every string from the data (class names, file
names, model names, parameters) reaches the page as text: through jinja2's autoescaping
on the server side, through ``textContent`` in the browser, and as JSON with ``<``,
``>`` and ``&`` escaped so that no string can end the ``<script>`` block that holds it.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from imacs.comparison.summaries import (
    MAX_CLASS_MEANS,
    MeanMaps,
    class_clusters,
    class_summary,
)
from imacs.errors import InvalidInputError
from imacs.report.headline import headline
from imacs.report.images import (
    MAP_STEPS,
    MAP_ZERO,
    MAX_SIDE,
    display_labels,
    display_map,
    display_size,
    mean_picture,
    picture,
    sheet_from_planes,
)
from imacs.report.naming import cluster_labels, model_label
from imacs.report.style import COLOR_A, COLOR_B, COLOR_NEUTRAL

#: region tiles per page in a cluster's panel
PAGE_SIZE = 48
#: exemplar thumbnails per cluster in the ranked list
N_EXEMPLARS = 5
#: bins of the agreement histograms
N_BINS = 20
#: the map-agreement metrics shown when the settings do not name them
DEFAULT_METRICS = ("spearman", "top-k-iou", "ssim", "cosine")
#: who selected a region, as the small integer the page's JSON stores
SELECTED_BY = {"a": 0, "b": 1, "both": 2}
#: outline of regions selected by both models (A and B have their own colours)
COLOR_BOTH = "#111111"
_SIGNIFICANT_DIGITS = 5


def write_report(
    comparison: Any,
    path: str | Path,
    *,
    title: str | None = None,
    progress: bool = True,
    max_side: int = MAX_SIDE,
    page_size: int = PAGE_SIZE,
    pixel_range: float | None = None,
) -> Path:
    """Write the comparison's report as one self-contained HTML file and return its path.

    Parameters
    ----------
    comparison:
        A :class:`imacs.comparison.result.Comparison` with a store: the report embeds
        every image, both maps and the segmentation, read back one image at a time.
    path:
        The file to write (its folder is created); an existing folder gets
        ``report.html``.
    title:
        The page's title; by default "A vs B" with the models' names.
    progress:
        Show a progress bar while the images are encoded.
    max_side:
        Embedded images are scaled down so that their long side is at most this many
        pixels (never up). Bigger means sharper drill-downs and a bigger file.
    page_size:
        Region tiles per page in a cluster's panel.
    pixel_range:
        The top of the images' pixel range (1 or 255); guessed per image when ``None``.
    """
    _check_comparison(comparison)
    if int(max_side) < 8:
        raise InvalidInputError(f"expected max_side of at least 8 pixels; got {max_side!r}")
    if int(page_size) < 1:
        raise InvalidInputError(f"expected a positive page_size; got {page_size!r}")
    out = Path(path)
    if out.is_dir():
        out = out / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)

    n_images = len(comparison.images)
    height, width = _image_size(comparison)
    size = display_size(height, width, int(max_side))
    pixels: dict[str, Any] = {"picture": [], "sheet": []}
    scales: dict[str, list[float]] = {"a": [], "b": []}
    labels_of = comparison.images["label"].tolist() if "label" in comparison.images else None
    n_classes = len({label for label in labels_of or [] if label >= 0})
    means = MeanMaps(size, per_class=n_classes <= MAX_CLASS_MEANS)
    held = _regions_by_image(comparison.regions)
    with _progress_bar(progress, n_images) as advance:
        for index in range(n_images):
            image = np.asarray(comparison.image(index))
            pixels["picture"].append(_b64(picture(image, size, scale=pixel_range)))
            segments = display_labels(np.asarray(comparison.segments(index)), size)
            plane_a = display_map(comparison.attribution(index, "a"), size)
            plane_b = display_map(comparison.attribution(index, "b"), size)
            encoded, scale_a, scale_b = sheet_from_planes(segments, plane_a, plane_b)
            pixels["sheet"].append(_b64(encoded))
            scales["a"].append(scale_a)
            scales["b"].append(scale_b)
            means.add(
                plane_a,
                plane_b,
                label=None if labels_of is None else int(labels_of[index]),
                labels=segments,
                regions=held.get(index, ()),
            )
            advance(1)
    mean_info: dict[str, Any] = {}
    pixels["means"] = {}
    for key, (stack, count) in means.means().items():
        encoded, scale = mean_picture(stack)
        pixels["means"][key] = _b64(encoded)
        mean_info[key] = {"scale": _number(scale), "n": count}

    data = _page_data(comparison, (height, width), size, scales, int(page_size))
    data["means"] = mean_info
    page_title = title if title is not None else _default_title(comparison)
    context = _template_context(comparison, data, page_title)
    html = _render(context, data, pixels)
    out.write_text(html, encoding="utf-8")
    return out


# -- checks -------------------------------------------------------------------------------


def _check_comparison(comparison: Any) -> None:
    missing = [
        name
        for name in (
            "clusters",
            "regions",
            "images",
            "image",
            "attribution",
            "segments",
            "model_name",
        )
        if not hasattr(comparison, name)
    ]
    if missing:
        raise InvalidInputError(
            f"expected an imacs Comparison (from imacs.compare or Comparison.load); got "
            f"{type(comparison).__name__}, which lacks {', '.join(missing)}"
        )
    if getattr(comparison, "store", None) is None:
        raise InvalidInputError(
            "the report shows every image with both attribution maps, which a comparison "
            "reads back from its store, and this comparison has none (store=None): run "
            "imacs.compare(..., store='some/folder') (or `imacs compare --store`), or "
            "Comparison.load a folder saved from a run that had a store"
        )
    if not Path(comparison.store).is_dir():
        raise InvalidInputError(
            f"the comparison's store {str(comparison.store)!r} is not a folder any more; the "
            "report needs its images and maps: run the comparison again with that store"
        )
    if len(comparison.images) == 0:
        raise InvalidInputError("the comparison has no images; there is nothing to report")


def _regions_by_image(regions: Any) -> dict[int, list[tuple[int, int]]]:
    """Per image, its salient regions as ``(cluster, region)`` pairs."""
    held: dict[int, list[tuple[int, int]]] = {}
    for image, cluster, region in zip(
        regions["image"].tolist(),
        regions["cluster"].tolist(),
        regions["region"].tolist(),
        strict=True,
    ):
        held.setdefault(int(image), []).append((int(cluster), int(region)))
    return held


def _image_size(comparison: Any) -> tuple[int, int]:
    shape = (getattr(comparison, "dataset", None) or {}).get("image_shape")
    if shape and len(shape) >= 2:
        return int(shape[0]), int(shape[1])
    first = np.asarray(comparison.image(0))
    return int(first.shape[0]), int(first.shape[1])


@contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[Any]:
    from imacs.comparison.runner import Progress

    progress = Progress(enabled, transient=True)
    with progress.running(), progress.stage("report: encoding images", total) as advance:
        yield advance


# -- the data the page's script reads -----------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _number(value: Any) -> float | int | None:
    """A JSON number with a few significant digits, or ``None`` for missing and non-finite."""
    try:
        number = float(value)
    except (TypeError, ValueError):  # None, pandas.NA, text
        return None
    if not math.isfinite(number):
        return None
    if number == int(number) and abs(number) < 2**53:
        return int(number)
    return float(f"{number:.{_SIGNIFICANT_DIGITS}g}")


def _column(table: Any, name: str, kind: str = "number") -> list[Any]:
    """One table column as a JSON-ready list; ``None`` for a missing column or value."""
    if name not in table:
        return [None] * len(table)
    values = table[name].tolist()
    if kind == "bool":
        return [None if _is_missing(v) else bool(v) for v in values]
    if kind == "str":
        return [None if _is_missing(v) else str(v) for v in values]
    return [_number(v) for v in values]


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _metrics(comparison: Any) -> list[str]:
    named = (getattr(comparison, "settings", None) or {}).get("metrics") or DEFAULT_METRICS
    return [str(m) for m in named if str(m) in comparison.images]


def _class_names(comparison: Any) -> list[str] | None:
    names = (getattr(comparison, "dataset", None) or {}).get("class_names")
    return None if names is None else [str(n) for n in names]


def _page_data(
    comparison: Any,
    original: tuple[int, int],
    size: tuple[int, int],
    scales: Mapping[str, Sequence[float]],
    page_size: int,
) -> dict[str, Any]:
    images, regions, clusters = comparison.images, comparison.regions, comparison.clusters
    metrics = _metrics(comparison)
    image_columns: dict[str, list[Any]] = {"name": _column(images, "name", "str")}
    for name in ("label", "pred_a", "pred_b", "target_a", "target_b"):
        image_columns[name] = _column(images, name)
    for name in ("correct_a", "correct_b", "agree"):
        image_columns[name] = _column(images, name, "bool")
    for name in ("probability_a", "probability_b", "n_regions", "n_selected", *metrics):
        image_columns[name] = _column(images, name)
    image_columns["scale_a"] = [_number(s) for s in scales["a"]]
    image_columns["scale_b"] = [_number(s) for s in scales["b"]]

    region_columns: dict[str, list[Any]] = {
        name: _column(regions, name)
        for name in ("image", "region", "cluster", "area", "y0", "x0", "y1", "x1")
    }
    region_columns["mass_a"] = _column(regions, "mass_a")
    region_columns["mass_b"] = _column(regions, "mass_b")
    region_columns["by"] = [SELECTED_BY.get(str(v), 2) for v in regions["selected_by"].tolist()]

    # within a cluster, regions with the most attribution of either model come first
    weight = np.asarray(regions["abs_a"], dtype=np.float64) + np.asarray(
        regions["abs_b"], dtype=np.float64
    )
    cluster_of = np.asarray(regions["cluster"], dtype=np.int64)
    image_of = np.asarray(regions["image"], dtype=np.int64)
    order = np.lexsort((np.arange(len(regions)), -np.nan_to_num(weight), cluster_of))
    members: dict[int, list[int]] = {}
    for position in order.tolist():
        members.setdefault(int(cluster_of[position]), []).append(position)

    names = cluster_labels(comparison)
    cluster_rows = []
    fields = (
        "cluster", "rank", "n_regions", "n_images", "selected_a", "selected_b",
        "selected_both", "mean_a", "mean_b", "difference", "ci_low", "ci_high",
        "p_value", "q_value", "accuracy_a", "accuracy_b", "ci_level", "causal_images",
        "causal_drop_a", "causal_drop_b", "causal_change_a", "causal_change_b",
    )  # fmt: skip
    for record in clusters.to_dict("records"):
        entry: dict[str, Any] = {name: _number(record.get(name)) for name in fields}
        entry["name"] = names.get(int(record["cluster"]), f"cluster {int(record['cluster'])}")
        entry["significant"] = bool(record.get("significant", False))
        entry["meaningful"] = bool(record.get("meaningful", False))
        note = record.get("note")
        entry["note"] = "" if _is_missing(note) else str(note)
        rows = members.get(int(record["cluster"]), [])
        entry["regions"] = rows
        entry["exemplars"] = _exemplars(rows, image_of)
        cluster_rows.append(entry)

    settings = getattr(comparison, "settings", None) or {}
    return {
        "meta": {
            "class_names": _class_names(comparison),
            "original": {"height": original[0], "width": original[1]},
            "display": {"height": size[0], "width": size[1]},
            "colors": {"a": COLOR_A, "b": COLOR_B, "neutral": COLOR_NEUTRAL, "both": COLOR_BOTH},
            "names": {side: model_label(comparison, side) for side in ("a", "b")},
            "metrics": metrics,
            "n_bins": N_BINS,
            "page_size": page_size,
            "confidence": _number(_interval_level(comparison)),
            "min_effect": _number(settings.get("min_effect")),
            "alpha": _number(settings.get("alpha", 0.05)),
            "map_zero": MAP_ZERO,
            "map_steps": MAP_STEPS,
        },
        "images": image_columns,
        "regions": region_columns,
        "clusters": cluster_rows,
        # each image's histogram bin per metric (None where the metric is undefined)
        "bins": {
            m: [None if b < 0 else int(b) for b in _bins(np.asarray(images[m], np.float64))[0]]
            for m in metrics
        },
    }


def _exemplars(rows: Sequence[int], image_of: np.ndarray) -> list[int]:
    """The first regions of ``rows`` from distinct images, at most :data:`N_EXEMPLARS`."""
    seen: set[int] = set()
    chosen = []
    for row in rows:
        image = int(image_of[row])
        if image not in seen:
            seen.add(image)
            chosen.append(row)
            if len(chosen) == N_EXEMPLARS:
                break
    return chosen


# -- what the template renders ------------------------------------------------------------


def _default_title(comparison: Any) -> str:
    return f"imacs: {model_label(comparison, 'a')} vs {model_label(comparison, 'b')}"


def _text(value: Any) -> str:
    """A parameter value as a short line of text."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    return str(value)


def _percent(value: Any) -> str:
    number = _number(value)
    return "n/a" if number is None else f"{100 * number:.1f}%"


def _interval_level(comparison: Any) -> float | None:
    """The clusters' interval level: one FCR-adjusted level for the whole table."""
    clusters = getattr(comparison, "clusters", None)
    if clusters is None or "ci_level" not in clusters or not len(clusters):
        return None
    return float(clusters["ci_level"].iloc[0])


def _confidence(value: Any) -> str:
    number = _number(value)
    return "?" if number is None else f"{100 * number:g}%"


def _params(params: Any) -> list[tuple[str, str]]:
    if not isinstance(params, Mapping):
        return []
    return [(str(k), _text(v)) for k, v in params.items()]


def _component(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        return {"name": _text(entry), "params": []}
    return {"name": str(entry.get("name", "?")), "params": _params(entry.get("params"))}


def _overview(comparison: Any) -> dict[str, Any]:
    summary = comparison.summary()
    models = getattr(comparison, "models", None) or {}
    settings = getattr(comparison, "settings", None) or {}
    dataset = getattr(comparison, "dataset", None) or {}
    sides = []
    for side in ("a", "b"):
        model = models.get(side, {}) or {}
        details = [(str(k), _text(v)) for k, v in model.items() if k != "name"]
        sides.append(
            {
                "side": side,
                "letter": side.upper(),
                "name": model_label(comparison, side),
                "details": details,
                "accuracy": _percent(summary.get(f"accuracy_{side}")),
            }
        )
    shape = dataset.get("image_shape")
    class_names = _class_names(comparison)
    labelled = comparison.images["label"] >= 0 if "label" in comparison.images else None
    data_facts = [
        ("images", str(summary["n_images"])),
        ("image shape", " x ".join(str(s) for s in shape) if shape else "?"),
        (
            "classes",
            f"{len(class_names)}: {', '.join(class_names[:6])}"
            + (f" and {len(class_names) - 6} more" if len(class_names) > 6 else "")
            if class_names
            else "integer labels",
        ),
        ("labelled", str(int(labelled.sum())) if labelled is not None else "0"),
    ]
    skipped = dataset.get("skipped") or []
    if skipped:
        data_facts.append(("skipped files", str(len(skipped))))
    analysis = [
        ("segmenter", _component(settings.get("segmenter"))),
        ("clusterer", _component(settings.get("clusterer"))),
    ]
    featurizers = settings.get("featurizers") or []
    selection = [
        ("targets", _text(settings.get("targets", "?"))),
        (
            "salient regions",
            f"top {settings['top_k']} densest per model"
            if settings.get("area_fraction") is None and settings.get("top_k")
            else f"densest covering {_text(settings.get('area_fraction'))} of the image",
        ),
        ("featurizers", ", ".join(_component(f)["name"] for f in featurizers) or "?"),
        (
            "statistics",
            "paired sign-flip test over images "
            f"({_text(settings.get('n_permutations', '?'))} sign vectors), Benjamini-Hochberg "
            f"q ≤ {_text(settings.get('alpha', 0.05))}; intervals from the same test at the "
            f"FCR-adjusted level {_confidence(_interval_level(comparison))}; ★ when "
            f"significant and |B \u2212 A| ≥ {_text(settings.get('min_effect', '?'))}",
        ),
    ]
    return {
        "models": sides,
        "method": _component(settings.get("method")),
        "analysis": analysis,
        "selection": selection,
        "dataset": data_facts,
        "numbers": [
            (f"accuracy of {sides[0]['name']}", _percent(summary.get("accuracy_a")), "a"),
            (f"accuracy of {sides[1]['name']}", _percent(summary.get("accuracy_b")), "b"),
            ("same prediction", _percent(summary.get("agreement")), ""),
            ("salient regions", f"{summary['n_regions']:,}", ""),
            ("clusters", str(summary["n_clusters"]), ""),
            ("significant clusters", str(summary["significant_clusters"]), ""),
        ],
    }


def _bar(difference: Any, low: Any, high: Any, limit: float, width: int = 130) -> dict[str, Any]:
    """Geometry of a diverging bar of ``difference`` with its interval, in SVG units."""
    centre = width / 2
    usable = width / 2 - 6

    def x(value: float) -> float:
        return round(centre + max(-1.0, min(1.0, value / limit)) * usable, 2)

    diff = _number(difference)
    bar: dict[str, Any] = {"width": width, "centre": centre, "rect": None, "ci": None}
    if diff is not None:
        left, right = sorted((centre, x(diff)))
        bar["rect"] = {"x": left, "width": max(right - left, 1.0), "side": "b" if diff > 0 else "a"}
    lo, hi = _number(low), _number(high)
    if lo is not None and hi is not None:
        bar["ci"] = {"x1": x(lo), "x2": x(hi)}
    return bar


def _causal_text(cluster: Mapping[str, Any]) -> str:
    """Each model's drop in target probability when the cluster's regions are hidden."""
    if not cluster.get("causal_images"):
        return ""
    drops = [cluster.get("causal_drop_a"), cluster.get("causal_drop_b")]
    if any(value is None for value in drops):
        return ""
    return " / ".join(f"{value:+.2f}" for value in drops)


def _limit(values: Iterable[Any]) -> float:
    finite = [abs(v) for v in (_number(v) for v in values) if v is not None]
    return max(finite, default=0.0) or 1.0


def _top_classes(comparison: Any, cluster: int, n_regions: int) -> list[str]:
    """The two classes with most of a cluster's regions, as "name share%"."""
    classes = getattr(comparison, "classes", None)
    if classes is None or len(classes) == 0 or not n_regions:
        return []
    rows = classes[classes["cluster"] == cluster].sort_values(
        ["n_regions", "label"], ascending=[False, True]
    )
    names = _class_names(comparison)
    parts = []
    for record in rows.head(2).to_dict("records"):
        label = int(record["label"])
        if label < 0:
            name = "unlabelled"
        elif names is not None and label < len(names):
            name = names[label]
        else:
            name = str(label)
        parts.append(f"{name} {100 * record['n_regions'] / n_regions:.0f}%")
    return parts


def _q_text(value: Any) -> str:
    number = _number(value)
    if number is None:
        return "n/a"
    if number == 0:
        return "0"
    return f"{number:.2g}" if number >= 0.001 else f"{number:.1e}"


def _signed(value: Any) -> str:
    number = _number(value)
    return "n/a" if number is None else f"{number:+.3f}"


def _cluster_rows(comparison: Any, data: Mapping[str, Any]) -> list[dict[str, Any]]:
    clusters = data["clusters"]
    limit = _limit(v for c in clusters for v in (c["difference"], c["ci_low"], c["ci_high"]))
    rows = []
    for c in clusters:
        total = max(int(c["n_regions"] or 0), 1)
        selected = [
            ("a", c["selected_a"] or 0),
            ("b", c["selected_b"] or 0),
            ("both", c["selected_both"] or 0),
        ]
        offset = 0.0
        stack = []
        for side, count in selected:
            share = 60 * count / total
            stack.append({"side": side, "x": round(offset, 2), "width": round(share, 2)})
            offset += share
        rows.append(
            {
                "cluster": c["cluster"],
                "name": c["name"],
                "rank": c["rank"],
                "significant": c["significant"],
                "meaningful": c["meaningful"],
                "bar": _bar(c["difference"], c["ci_low"], c["ci_high"], limit),
                "difference": _signed(c["difference"]),
                "ci": f"[{_signed(c['ci_low'])}, {_signed(c['ci_high'])}]",
                "mean_a": _signed(c["mean_a"]).lstrip("+"),
                "mean_b": _signed(c["mean_b"]).lstrip("+"),
                "q": _q_text(c["q_value"]),
                "n_regions": c["n_regions"],
                "n_images": c["n_images"],
                "selected": {side: count for side, count in selected},
                "stack": stack,
                "accuracy_a": _percent(c["accuracy_a"]),
                "accuracy_b": _percent(c["accuracy_b"]),
                "causal": _causal_text(c),
                "classes": _top_classes(comparison, int(c["cluster"]), int(c["n_regions"] or 0)),
                "note": c["note"],
                "exemplars": c["exemplars"],
            }
        )
    return rows


def _bins(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Each value's histogram bin (-1 where not finite), and the histogram's range.

    The range is 0..1, or -1..1 when some value is negative (or up to the largest value
    above 1); the top value falls in the last bin. The page lists a bin's images from
    these same indices, so a bar's count and its list always agree.
    """
    finite = np.isfinite(values)
    low = -1.0 if finite.any() and values[finite].min() < 0 else 0.0
    high = max(1.0, float(values[finite].max())) if finite.any() else 1.0
    position = np.where(finite, (np.where(finite, values, low) - low) / (high - low), 0.0)
    index = np.clip(np.floor(position * N_BINS).astype(np.int64), 0, N_BINS - 1)
    return np.where(finite, index, -1), low, high


def _histogram(values: np.ndarray, name: str) -> dict[str, Any]:
    index, low, high = _bins(values)
    finite = values[np.isfinite(values)]
    counts = np.bincount(index[index >= 0], minlength=N_BINS)
    edges = np.linspace(low, high, N_BINS + 1)
    width, height = 260, 90
    peak = max(int(counts.max()) if counts.size else 0, 1)
    step = width / N_BINS
    bars = []
    for k, count in enumerate(counts.tolist()):
        h = round(height * count / peak, 2)
        bars.append(
            {
                "bin": k,
                "count": count,
                "x": round(k * step, 2),
                "y": round(height - h, 2),
                "width": round(step - 1, 2),
                "height": h,
                "label": f"{edges[k]:.2f} to {edges[k + 1]:.2f}: {count} images",
            }
        )
    median = float(np.median(finite)) if finite.size else None
    return {
        "name": name,
        "bars": bars,
        "width": width,
        "height": height,
        "low": f"{low:g}",
        "high": f"{high:g}",
        "median": None if median is None else f"{median:.3f}",
        "median_x": None
        if median is None
        else round((median - low) / ((high - low) or 1.0) * width, 2),
        "n": int(finite.size),
        "missing": int(values.size - finite.size),
    }


def _agreement(comparison: Any, metrics: Sequence[str]) -> dict[str, Any]:
    images = comparison.images
    histograms = [
        _histogram(np.asarray(images[m], dtype=np.float64), m) for m in metrics if m in images
    ]
    agree = np.asarray(images["agree"], dtype=bool)
    outcome: list[dict[str, Any]] = []
    labelled = np.asarray(images["label"] >= 0) if "label" in images else np.zeros(len(agree), bool)
    if labelled.any():
        ca = np.asarray(images["correct_a"].fillna(False), dtype=bool) & labelled
        cb = np.asarray(images["correct_b"].fillna(False), dtype=bool) & labelled
        n = int(labelled.sum())
        counts = [
            ("both correct", int((ca & cb).sum()), "both"),
            (f"only {model_label(comparison, 'a')} correct", int((ca & ~cb).sum()), "a"),
            (f"only {model_label(comparison, 'b')} correct", int((~ca & cb).sum()), "b"),
            ("both wrong", int((labelled & ~ca & ~cb).sum()), "none"),
        ]
        offset = 0.0
        for label, count, kind in counts:
            share = 100 * count / n
            outcome.append(
                {
                    "label": label,
                    "count": count,
                    "kind": kind,
                    "x": round(offset, 3),
                    "width": round(share, 3),
                    "percent": f"{share:.1f}%",
                }
            )
            offset += share
    return {
        "histograms": histograms,
        "agree": _percent(agree.mean() if agree.size else None),
        "n_agree": int(agree.sum()),
        "n_images": int(agree.size),
        "outcome": outcome,
    }


#: images in the "maps disagree most" list
N_DISAGREE = 12


def _class_label(comparison: Any, label: int) -> str:
    names = _class_names(comparison)
    if label < 0:
        return "unlabelled"
    return names[label] if names is not None and label < len(names) else str(label)


def _class_rows(
    comparison: Any, names: Mapping[int, str], means: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The per-class view: accuracy, agreement, mean maps and the clusters that carry the
    class's difference (:func:`imacs.comparison.summaries.class_clusters`)."""
    carriers = class_clusters(comparison)
    rows = []
    for record in class_summary(comparison).to_dict("records"):
        label = int(record["label"])
        key = f"class:{label}"
        rows.append(
            {
                "label": label,
                "name": _class_label(comparison, label),
                "n_images": int(record["n_images"]),
                "accuracy_a": _percent(record["accuracy_a"]),
                "accuracy_b": _percent(record["accuracy_b"]),
                "agreement": _percent(record["agreement"]),
                "means": key if key in means else None,
                "clusters": [
                    {
                        "cluster": cluster,
                        "name": names.get(cluster, f"cluster {cluster}"),
                        "value": f"{value:+.3f}",
                        "side": "b" if value > 0 else "a",
                    }
                    for cluster, value in carriers.get(label, [])
                ],
            }
        )
    return rows


def _disagree(comparison: Any, metrics: Sequence[str]) -> dict[str, Any]:
    """The images whose two maps agree least by the first metric, lowest first."""
    if not metrics:
        return {"metric": None, "rows": []}
    metric = metrics[0]
    images = comparison.images
    values = np.asarray(images[metric], dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(values))
    order = finite[np.lexsort((finite, values[finite]))][:N_DISAGREE]
    rows = []
    for index in order.tolist():
        label = int(images["label"].iloc[index]) if "label" in images else -1
        rows.append(
            {
                "index": index,
                "name": str(images["name"].iloc[index]),
                "value": f"{values[index]:.3f}",
                "label": _class_label(comparison, label),
                "pred_a": _class_label(comparison, int(images["pred_a"].iloc[index])),
                "pred_b": _class_label(comparison, int(images["pred_b"].iloc[index])),
            }
        )
    return {"metric": metric, "rows": rows}


def _alerts(comparison: Any) -> list[dict[str, str]]:
    """The comparison's alerts as the template shows them, errors first."""
    alerts = [
        {"code": str(a.code), "severity": str(a.severity), "message": str(a.message)}
        for a in getattr(comparison, "alerts", None) or []
    ]
    return sorted(alerts, key=lambda a: a["severity"] != "error")


def _template_context(comparison: Any, data: Mapping[str, Any], title: str) -> dict[str, Any]:
    from imacs.report.quality import quality_view
    from imacs.report.spatial import spatial_view

    return {
        "title": title,
        "alerts": _alerts(comparison),
        "headline": headline(comparison),
        "name_a": data["meta"]["names"]["a"],
        "name_b": data["meta"]["names"]["b"],
        "classes": _class_rows(comparison, cluster_labels(comparison), data.get("means", {})),
        "disagree": _disagree(comparison, data["meta"]["metrics"]),
        "has_means": "all" in data.get("means", {}),
        "generated": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"),
        "overview": _overview(comparison),
        "clusters": _cluster_rows(comparison, data),
        "agreement": _agreement(comparison, data["meta"]["metrics"]),
        "confidence": _confidence(data["meta"]["confidence"]),
        "min_effect": _text(data["meta"]["min_effect"]),
        "alpha": _text(data["meta"]["alpha"]),
        "colors": data["meta"]["colors"],
        "n_images": len(comparison.images),
        "spatial": spatial_view(comparison),
        "quality": quality_view(comparison),
    }


# -- rendering ----------------------------------------------------------------------------


def script_json(value: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` become ``\\u003c``, ``\\u003e`` and ``\\u0026``: JSON.parse reads
    them back unchanged, and no string in the data can close the script element or open a
    comment in it.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _asset(name: str) -> str:
    return resources.files("imacs.report").joinpath("templates", name).read_text(encoding="utf-8")


def _csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _render(context: dict[str, Any], data: Any, pixels: Mapping[str, list[str]]) -> str:
    import jinja2
    from markupsafe import Markup

    colors = context["colors"]
    css = (
        f":root {{ --color-a: {colors['a']}; --color-b: {colors['b']}; "
        f"--color-neutral: {colors['neutral']}; --color-both: {colors['both']}; }}\n"
        + _asset("report.css")
    )
    script = _asset("report.js")
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: _asset(name)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = environment.get_template("report.html.j2")
    return template.render(
        **context,
        css=Markup(css),
        script=Markup(script),
        csp=Markup(
            "default-src 'none'; img-src data:; "
            f"style-src {_csp_hash(css)}; script-src {_csp_hash(script)}"
        ),
        data_json=Markup(script_json(data)),
        pixels_json=Markup(script_json(pixels)),
    )
