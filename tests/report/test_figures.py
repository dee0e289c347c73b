"""The static figures: what they draw, that they save as PNG and SVG, reproducibly."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from PIL import Image

import imacs
from imacs.demo.data import shortcut_digits, split_indices
from imacs.errors import InvalidInputError
from imacs.report.figures import (
    DPI,
    exemplars_figure,
    save_figure,
    save_figures,
    summary_figure,
)
from imacs.report.style import COLOR_A, COLOR_B
from imacs.testing.planted import planted_models

# a fixed k skips the search over k, which the comparison tests cover
FAST = {"method_params": {"n_steps": 8}, "n_permutations": 200, "n_clusters": 8, "progress": False}


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> Any:
    _, test = split_indices()
    data = shortcut_digits(test[:96], shortcut=False, seed=7)
    store = tmp_path_factory.mktemp("store")
    return imacs.compare(*planted_models(), data.images, data.labels, store=store, **FAST)


def _bars(figure: Any) -> dict[int, Any]:
    return {
        int(patch.get_gid().removeprefix("cluster-")): patch
        for ax in figure.axes
        for patch in ax.patches
        if (patch.get_gid() or "").startswith("cluster-")
    }


def _svg_text(path: Path) -> str:
    return " ".join("".join(element.itertext()) for element in ET.parse(path).iter())


def test_bars_take_the_colour_of_the_model_that_relies_more(comparison: Any) -> None:
    clusters = comparison.clusters
    assert clusters["significant"].any() and not clusters["significant"].all()
    assert (clusters["difference"] > 0).any() and (clusters["difference"] < 0).any()
    bars = _bars(summary_figure(comparison))
    assert sorted(bars) == sorted(clusters["cluster"])
    for row in clusters.itertuples():
        bar = bars[row.cluster]
        colour = to_rgba(COLOR_B if row.difference > 0 else COLOR_A)
        assert bar.get_width() == pytest.approx(row.difference)
        assert bar.get_edgecolor() == pytest.approx(colour)
        if row.significant:
            assert bar.get_facecolor() == pytest.approx(colour) and not bar.get_hatch()
        else:  # unfilled and hatched
            assert bar.get_facecolor() == pytest.approx(to_rgba("white"))
            assert bar.get_hatch()


def test_top_bounds_the_clusters_drawn_and_must_be_positive(comparison: Any) -> None:
    bars = _bars(summary_figure(comparison, top=3))
    assert sorted(bars) == sorted(comparison.clusters["cluster"].head(3))
    with pytest.raises(InvalidInputError, match="top"):
        summary_figure(comparison, top=0)
    with pytest.raises(InvalidInputError, match="per_cluster"):
        exemplars_figure(comparison, per_cluster=0)


@pytest.fixture(scope="module")
def saved(comparison: Any, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return save_figures(comparison, tmp_path_factory.mktemp("figures"))


def test_save_figures_writes_png_and_svg_of_both_figures(
    comparison: Any, saved: list[Path]
) -> None:
    names = ["summary.png", "summary.svg", "exemplars.png", "exemplars.svg"]
    if comparison.spatial is not None:  # where in the frame's positional maps
        names += ["positional.png", "positional.svg"]
    assert sorted(p.name for p in saved) == sorted(names)
    for path in saved:
        assert path.stat().st_size > 1000
    folder = saved[0].parent
    expected = np.round(summary_figure(comparison).get_size_inches() * DPI).astype(int)
    with Image.open(folder / "summary.png") as png:
        assert png.format == "PNG"
        assert png.size == tuple(expected)
    text = _svg_text(folder / "summary.svg")
    for row in comparison.clusters.itertuples():
        # each tick names the cluster in words, its id and its support
        assert f"{row.name.split(',')[0]}" in text
        assert f"cluster {row.cluster}, {row.n_regions} region" in text
    assert "A relies more (A (numpy))" in text and "B relies more (B (numpy))" in text
    assert "spearman" in text
    top = comparison.clusters.iloc[0]
    exemplars = _svg_text(folder / "exemplars.svg")
    assert f"cluster {top['cluster']}, B" in exemplars
    assert top["name"].split()[0] in exemplars
    # the outline rule is stated on the figure
    assert "Outline: the model that puts more attribution on the region" in exemplars


def test_the_same_comparison_gives_the_same_bytes_and_settings_are_left_alone(
    comparison: Any, saved: list[Path], tmp_path: Path
) -> None:
    before = dict(matplotlib.rcParams)
    backend = matplotlib.get_backend()
    # without the store only the summary is drawn, which is all this needs to compare
    again = save_figures(dataclasses.replace(comparison, store=None), tmp_path)
    first = {path.name: path for path in saved}
    for path in again:
        assert path.read_bytes() == first[path.name].read_bytes(), path.name
    assert b"<dc:date>" not in first["summary.svg"].read_bytes()
    assert dict(matplotlib.rcParams) == before
    assert matplotlib.get_backend() == backend
    # the exemplars embed the crops as PNG; those are reproducible too
    one, two = (
        save_figure(exemplars_figure(comparison, top=2, per_cluster=2), tmp_path / name)
        for name in ("one.svg", "two.svg")
    )
    assert one.read_bytes() == two.read_bytes()


def test_exemplars_show_one_crop_per_image_with_the_region_outlined(comparison: Any) -> None:
    figure = exemplars_figure(comparison, top=3, per_cluster=4)
    axes = np.array(figure.axes).reshape(3, 4)
    for row, cluster in zip(axes, comparison.clusters.head(3).itertuples(), strict=True):
        shown = [ax for ax in row if ax.images]
        assert len(shown) == min(4, cluster.n_images)
        for ax in shown:
            assert ax.get_title()  # names the image, its class and who was right
            assert ax.images[0].get_array().shape[:2] <= (32, 32)
        assert all(ax.collections or ax.spines["left"].get_visible() for ax in shown)
    # the planted patch is 6 px wide: its crops show it with some context, not the image
    assert all(ax.images[0].get_array().shape[:2] < (16, 16) for ax in axes[0])


def test_without_the_store_only_the_summary_is_drawn(comparison: Any, tmp_path: Path) -> None:
    storeless = dataclasses.replace(comparison, store=None)
    with pytest.raises(InvalidInputError, match="store"):
        exemplars_figure(storeless)
    moved = dataclasses.replace(comparison, store=str(tmp_path / "gone"), spatial=None)
    assert sorted(p.name for p in save_figures(moved, tmp_path / "out")) == [
        "summary.png",
        "summary.svg",
    ]
    assert not (tmp_path / "gone").exists()


def test_names_are_drawn_literally_and_the_svg_stays_valid(comparison: Any, tmp_path: Path) -> None:
    name = '<script>alert("$1_x$")</script> & co'
    models = {side: {**comparison.models[side], "name": name} for side in ("a", "b")}
    renamed = dataclasses.replace(comparison, models=models)
    path = save_figure(summary_figure(renamed), tmp_path / "summary.svg")
    assert f"A relies more ({name})" in _svg_text(path)
