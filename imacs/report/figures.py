"""Static figures of a comparison, for papers and slides.

Figures are built on :class:`matplotlib.figure.Figure` with an Agg canvas and styled
inside :func:`matplotlib.rc_context`, so making or saving one never changes pyplot's
state or the backend of a user's notebook. Saved SVGs carry no date and a fixed hash
salt: the same comparison gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from imacs.errors import InvalidInputError
from imacs.report.naming import cluster_labels, model_label
from imacs.report.notebook import difference_colour
from imacs.report.style import COLOR_A, COLOR_B, COLOR_NEUTRAL, format_q

if TYPE_CHECKING:
    from imacs.comparison.result import Comparison

#: resolution of saved PNGs, in pixels per inch
DPI = 150
#: the formats :func:`save_figures` writes each figure in
FORMATS = ("png", "svg")

# sizes for a slide seen from the back of a room; SVG text stays text, so it can be edited
_STYLE: dict[Any, Any] = {
    "font.size": 13,
    "axes.titlesize": 14,
    "axes.labelsize": 13,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "legend.fontsize": 12,
    "figure.titlesize": 16,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",
    "svg.hashsalt": "imacs",
}
_TEXT = "#222222"
_MINUS = "\u2212"


@contextmanager
def _style() -> Iterator[None]:
    with matplotlib.rc_context(_STYLE):
        yield


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _plain(text: object) -> str:
    """``text`` as matplotlib shows it literally: a ``$`` would start mathtext."""
    return str(text).replace("$", r"\$")


def _positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InvalidInputError(f"expected {name} to be a positive integer; got {value!r}")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


# -- summary ------------------------------------------------------------------------------


def summary_figure(comparison: Comparison, *, top: int = 20) -> Figure:
    """The ranked clusters as a diverging bar chart of B - A, and per-image agreement.

    Left: one bar per cluster among the ``top`` ranked, its length the difference of the
    two models' mean share of each image's attribution on the cluster, its whisker the
    FCR-adjusted interval of the sign-flip test; in B's colour where B relies more, in A's
    where A does; hatched and unfilled when the difference is not significant, with its
    q-value beside it and a star when it is significant and at least ``min_effect``.
    The tick labels give each cluster's support. Right: histograms of the per-image
    agreement of the two maps (one per metric).
    """
    _positive("top", top)
    clusters = comparison.clusters.head(top)
    height = max(5.5, 0.62 * len(clusters) + 2.6)
    with _style():
        figure = _new_figure(17.0, height)
        left, right = cast(Any, figure.subfigures(1, 2, width_ratios=[2.1, 1.0]))
        _cluster_bars(left, comparison, clusters)
        _agreement_histograms(right, comparison)
        figure.suptitle(
            _plain(
                f"A: {model_label(comparison, 'a')}  vs  B: {model_label(comparison, 'b')}"
                f"  \u00b7  {len(comparison.images)} images"
            ),
            fontweight="bold",
        )
    return figure


def _cluster_bars(panel: Any, comparison: Comparison, clusters: Any) -> None:
    ax = panel.subplots()
    total = len(comparison.clusters)
    ax.set_title(f"Clusters where the models' attribution differs (top {len(clusters)} of {total})")
    if clusters.empty:
        ax.text(0.5, 0.5, "no clusters", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    difference = clusters["difference"].to_numpy(dtype=np.float64)
    # the interval around the bar; the bar alone where the interval is missing or unbounded
    low = clusters["ci_low"].to_numpy(dtype=np.float64)
    high = clusters["ci_high"].to_numpy(dtype=np.float64)
    low = np.where(np.isfinite(low), np.fmin(low, difference), difference)
    high = np.where(np.isfinite(high), np.fmax(high, difference), difference)
    significant = clusters["significant"].to_numpy(dtype=bool)
    starred = clusters.get("meaningful", clusters["significant"]).to_numpy(dtype=bool)
    rows = np.arange(len(clusters))
    for row, cluster, value, marked in zip(
        rows, clusters["cluster"], difference, significant, strict=True
    ):
        colour = difference_colour(value)
        (bar,) = ax.barh(
            row,
            value,
            height=0.7,
            color=colour if marked else "white",
            edgecolor=colour,
            hatch=None if marked else "///",
            linewidth=1.5,
        )
        bar.set_gid(f"cluster-{int(cluster)}")
    ax.errorbar(
        difference,
        rows,
        xerr=np.stack([difference - low, high - difference]),
        fmt="none",
        ecolor=_TEXT,
        elinewidth=1.3,
        capsize=4,
    )
    ax.axvline(0.0, color=_TEXT, linewidth=1.0)

    lowest, highest = min(0.0, float(low.min())), max(0.0, float(high.max()))
    span = (highest - lowest) or 1.0
    pad = 0.03 * span
    for row, value, lo, hi, q, marked, star in zip(
        rows, difference, low, high, clusters["q_value"], significant, starred, strict=True
    ):
        label = f"q = {format_q(float(q))}" + (" \u2605" if star else "")
        positive = value >= 0
        ax.text(
            hi + pad if positive else lo - pad,
            row,
            label,
            ha="left" if positive else "right",
            va="center",
            fontsize=11,
            color=_TEXT if marked else COLOR_NEUTRAL,
        )
    # room for the q-value labels on the sides that have bars
    room = 0.32 * span
    ax.set_xlim(
        lowest - (room if (difference < 0).any() else pad),
        highest + (room if (difference >= 0).any() else pad),
    )
    names = cluster_labels(comparison)
    ax.set_yticks(
        rows,
        [
            _plain(
                f"#{rank}  {_wrap(names.get(int(cluster), ''), 40)}\ncluster {cluster}, "
                f"{_count(n_regions, 'region')} / {_count(n_images, 'image')}"
            )
            for rank, cluster, n_regions, n_images in zip(
                clusters["rank"],
                clusters["cluster"],
                clusters["n_regions"],
                clusters["n_images"],
                strict=True,
            )
        ],
    )
    ax.set_ylim(len(clusters) - 0.5, -0.5)  # rank 1 on top
    ax.tick_params(axis="y", length=0)
    level = float(clusters["ci_level"].iloc[0]) if "ci_level" in clusters else 0.95
    ax.set_xlabel(
        f"B {_MINUS} A: share of each image's attribution "
        f"({100 * level:.4g}% FCR-adjusted interval)"
    )
    ax.grid(axis="x", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    alpha = comparison.settings.get("alpha", 0.05)
    handles = [
        Patch(
            facecolor=COLOR_B,
            edgecolor=COLOR_B,
            label=_plain(f"B relies more ({model_label(comparison, 'b')})"),
        ),
        Patch(
            facecolor=COLOR_A,
            edgecolor=COLOR_A,
            label=_plain(f"A relies more ({model_label(comparison, 'a')})"),
        ),
        Patch(
            facecolor="white",
            edgecolor=COLOR_NEUTRAL,
            hatch="///",
            label=f"not significant (q > {alpha:g})",
        ),
        Line2D([], [], color=_TEXT, marker="|", markersize=10, label="confidence interval"),
    ]
    panel.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)


def _agreement_histograms(panel: Any, comparison: Comparison) -> None:
    images = comparison.images
    names = comparison.settings.get("metrics") or ["spearman", "top-k-iou", "ssim", "cosine"]
    metrics = [name for name in names if name in images.columns]
    agree = float(images["agree"].mean()) if len(images) else float("nan")
    panel.suptitle(f"Per-image agreement of the maps\npredictions agree on {100 * agree:.0f}%")
    if not metrics:
        ax = panel.subplots()
        ax.text(0.5, 0.5, "no map metrics", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    columns = 1 if len(metrics) == 1 else 2
    axes = panel.subplots(-(-len(metrics) // columns), columns, squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        values = images[metric].to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        if not len(values):
            ax.set_title(_plain(metric))
            ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
            continue
        median = float(np.median(values))
        ax.set_title(_plain(f"{metric} (median {median:.2f})"))
        ax.hist(values, bins=20, color=COLOR_NEUTRAL, edgecolor="white", linewidth=0.5)
        ax.axvline(median, color=_TEXT, linestyle="--", linewidth=1.2)
    for ax in axes[:, 0]:
        ax.set_ylabel("images")
    for ax in list(axes.flat)[len(metrics) :]:
        ax.set_axis_off()


# -- exemplars ----------------------------------------------------------------------------


def exemplars_figure(comparison: Comparison, *, top: int = 8, per_cluster: int = 6) -> Figure:
    """A grid of region thumbnails: one row per top cluster, ``per_cluster`` per row.

    Each thumbnail is a crop of the image around one of the cluster's regions, the region
    outlined in the colour of the model that puts more attribution on it. A row shows the
    regions most typical of its cluster's difference, one per image. The crops are read
    from the store; without it an :class:`~imacs.errors.InvalidInputError` is raised.
    """
    _positive("top", top)
    _positive("per_cluster", per_cluster)
    if not comparison.has_store:
        raise InvalidInputError(
            "the exemplar figure shows crops of the images, which are read from the store; "
            f"this comparison's store ({comparison.store!r}) is not there. Run the "
            "comparison with store=... and keep that folder, or set comparison.store to it"
        )
    clusters = comparison.clusters.head(top)
    regions = comparison.regions
    names = cluster_labels(comparison)
    arrays: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def image_and_segments(index: int) -> tuple[np.ndarray, np.ndarray]:
        if index not in arrays:
            arrays[index] = (
                _displayable(np.asarray(comparison.image(index))),
                np.asarray(comparison.segments(index)),
            )
        return arrays[index]

    rows = max(len(clusters), 1)
    with _style():
        figure = _new_figure(1.9 * per_cluster + 2.8, 2.15 * rows + 0.9)
        axes = figure.subplots(rows, per_cluster, squeeze=False)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
        for row, cluster in enumerate(clusters.itertuples(index=False)):
            members = regions[regions["cluster"] == cluster.cluster]
            chosen = _typical_regions(members, float(cluster.difference), per_cluster)
            for ax, region in zip(axes[row], chosen.itertuples(index=False), strict=False):
                image, segments = image_and_segments(int(region.image))
                _thumbnail(ax, comparison, image, segments, region)
            for ax in axes[row, len(chosen) :]:
                ax.set_axis_off()
            star = " \u2605" if getattr(cluster, "meaningful", cluster.significant) else ""
            axes[row, 0].set_ylabel(
                _plain(
                    f"#{cluster.rank} {_wrap(names.get(int(cluster.cluster), ''))}\n"
                    f"cluster {cluster.cluster}, B {_MINUS} A = {cluster.difference:+.3f}{star}"
                ),
                rotation=0,
                ha="right",
                va="center",
                color=difference_colour(float(cluster.difference)),
                fontweight="bold",
            )
        if clusters.empty:
            axes[0, 0].set_axis_off()
        figure.suptitle(
            _plain(
                "Typical regions of the top clusters\n"
                "Outline: the model that puts more attribution on the region, "
                f"B ({model_label(comparison, 'b')}) or A ({model_label(comparison, 'a')})"
            ),
            fontsize=14,
        )
    return figure


def _wrap(name: str, width: int = 24) -> str:
    """A cluster name on lines of about ``width`` characters, broken at spaces."""
    import textwrap

    return "\n".join(textwrap.wrap(name, width)) or name


def _typical_regions(members: Any, difference: float, count: int) -> Any:
    """The ``count`` regions furthest in the cluster's direction, one per image."""
    direction = 1.0 if difference >= 0 else -1.0
    ordered = members.assign(_typical=-direction * members["difference"]).sort_values(
        ["_typical", "image", "region"], kind="stable"
    )
    return ordered.drop_duplicates("image").head(count)


def _displayable(image: np.ndarray) -> np.ndarray:
    """An image as RGB floats in [0, 1]; 0..255 data is recognised by its range."""
    values = image.astype(np.float64)
    if values.ndim == 2:
        values = values[..., None]
    if values.shape[-1] == 1:
        values = np.repeat(values, 3, axis=-1)
    if values.max(initial=0.0) > 1.5:
        values = values / 255.0
    return np.clip(values[..., :3], 0.0, 1.0)


def _crop_box(
    y0: int, x0: int, y1: int, x1: int, height: int, width: int
) -> tuple[int, int, int, int]:
    """A square around the box with room for context, shifted to lie inside the image."""
    side = max(y1 - y0, x1 - x0)
    side = round(max(1.6 * side, 0.3 * min(height, width), 4))
    side_y, side_x = min(side, height), min(side, width)
    top = int(np.clip((y0 + y1) // 2 - side_y // 2, 0, height - side_y))
    left = int(np.clip((x0 + x1) // 2 - side_x // 2, 0, width - side_x))
    return top, left, top + side_y, left + side_x


def _thumbnail(
    ax: Any, comparison: Comparison, image: np.ndarray, segments: np.ndarray, region: Any
) -> None:
    height, width = segments.shape
    top, left, bottom, right = _crop_box(
        int(region.y0), int(region.x0), int(region.y1), int(region.x1), height, width
    )
    crop = image[top:bottom, left:right]
    mask = (segments[top:bottom, left:right] == region.region).astype(np.float64)
    small = max(crop.shape[:2]) < 96
    ax.imshow(crop, interpolation="nearest" if small else "antialiased")
    colour = difference_colour(float(region.difference))
    rows, columns = mask.shape
    if 0.0 < mask.mean() < 1.0:
        # padded with zeros so that the outline closes along the crop's edges too
        ax.contour(
            np.arange(-1, columns + 1),
            np.arange(-1, rows + 1),
            np.pad(mask, 1),
            levels=[0.5],
            colors=[colour],
            linewidths=2.5,
        )
        ax.set_xlim(-0.5, columns - 0.5)
        ax.set_ylim(rows - 0.5, -0.5)
    else:  # the region fills the crop: frame it instead
        for spine in ax.spines.values():
            spine.set_visible(True)
            spine.set_edgecolor(colour)
            spine.set_linewidth(2.5)
    name = str(comparison.images["name"].iloc[int(region.image)])
    if len(name) > 18:
        name = "\u2026" + name[-17:]
    ax.set_title(
        _plain(f"{name}\n{_class_label(comparison, int(region.label))} \u00b7 {_correct(region)}"),
        fontsize=9,
    )


def _class_label(comparison: Comparison, label: int) -> str:
    if label < 0:
        return "unlabelled"
    names = comparison.dataset.get("class_names")
    if names and label < len(names):
        return str(names[label])
    return f"class {label}"


def _correct(region: Any) -> str:
    import pandas as pd

    def mark(value: Any) -> str:
        if pd.isna(value):
            return "?"
        return "\u2713" if bool(value) else "\u2717"

    return f"A {mark(region.correct_a)}  B {mark(region.correct_b)}"


# -- saving -------------------------------------------------------------------------------


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` to ``path`` (format from the suffix), reproducibly."""
    target = Path(path)
    fmt = target.suffix.lstrip(".").lower()
    metadata: dict[str, Any] = {"Date": None} if fmt == "svg" else {}
    with _style():
        figure.savefig(target, format=fmt, dpi=DPI, metadata=metadata)
    return target


def save_figures(comparison: Comparison, directory: str | Path) -> list[Path]:
    """Write ``summary.png`` and ``summary.svg``, and the exemplars when the store is there.

    Returns the paths written. The exemplar figure needs the images, which live in the
    store; without it only the summary is written.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    figures = {"summary": summary_figure(comparison)}
    if comparison.has_store:
        figures["exemplars"] = exemplars_figure(comparison)
    from imacs.report.spatial import positional_figure

    positional = positional_figure(comparison)
    if positional is not None:
        figures["positional"] = positional
    written = []
    for name, figure in figures.items():
        for fmt in FORMATS:
            written.append(save_figure(figure, out / f"{name}.{fmt}"))
            # laid out once: the other formats keep those positions instead of redoing them
            figure.set_layout_engine("none")
    return written
