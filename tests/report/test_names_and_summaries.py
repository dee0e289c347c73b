"""Cluster names in words, the per-class summary and the mean maps behind the report."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import pandas as pd
import pytest

from imacs.comparison.naming import cluster_names, known_features, names_of
from imacs.comparison.summaries import class_clusters, class_summary, mean_maps
from imacs.features.color import ColorHistogram
from imacs.features.shape import RegionShape
from imacs.features.texture import LocalBinaryPatterns
from imacs.report.images import display_labels, display_map
from imacs.report.naming import model_label
from imacs.report.notebook import summary_html


def _regions(boxes: list[tuple[int, int, int, int, int, int]]) -> pd.DataFrame:
    """A regions table from (cluster, image, y0, x0, y1, x1); regions fill their boxes."""
    rows = [
        {
            "cluster": c,
            "image": i,
            "region": k,
            "y0": y0,
            "x0": x0,
            "y1": y1,
            "x1": x1,
            "area": (y1 - y0) * (x1 - x0),
        }
        for k, (c, i, y0, x0, y1, x1) in enumerate(boxes)
    ]
    return pd.DataFrame(rows)


# (cluster, regions as boxes in a 100 x 100 image, the name expected from the table alone)
GEOMETRY_CASES = [
    (0, [(0, 0, 10, 10), (2, 1, 12, 11)], "small square, top-left corner"),
    (1, [(40, 40, 60, 60), (41, 39, 61, 59)], "medium square, centre"),
    (2, [(0, 90, 100, 100), (0, 91, 100, 100)], "medium vertical strip, right edge"),
    (3, [(95, 0, 100, 100), (94, 0, 99, 100)], "medium horizontal strip, bottom edge"),
    (4, [(0, 0, 3, 3), (90, 90, 93, 93), (0, 90, 3, 93), (90, 0, 93, 3)], "tiny square, anywhere"),
    (5, [(0, 0, 80, 80), (10, 10, 90, 90)], "very large square, centre"),
]


@pytest.mark.parametrize(("cluster", "boxes", "expected"), GEOMETRY_CASES)
def test_size_shape_and_position_come_from_the_regions_boxes(
    cluster: int, boxes: list[tuple[int, int, int, int]], expected: str
) -> None:
    regions = _regions([(cluster, k, *box) for k, box in enumerate(boxes)])
    assert cluster_names(regions, (100, 100), [cluster]) == {cluster: expected}


def _image_and_labels() -> tuple[np.ndarray, np.ndarray]:
    """A 32 x 32 image: a flat saturated red square top-left on a noisy grey background."""
    rng = np.random.default_rng(0)
    image = np.repeat(rng.uniform(0.3, 0.7, (32, 32, 1)), 3, axis=-1)
    image[:6, :6] = (0.9, 0.05, 0.05)
    labels = np.ones((32, 32), dtype=np.int64)
    labels[:6, :6] = 0
    return image.astype(np.float32), labels


def test_colour_and_texture_words_come_from_the_featurizers_raw_columns() -> None:
    image, labels = _image_and_labels()
    featurizers = [ColorHistogram(), LocalBinaryPatterns(), RegionShape()]
    blocks = [f.featurize(image, labels) for f in featurizers]
    regions = _regions([(0, 0, 0, 0, 6, 6), (1, 0, 0, 0, 32, 32)])
    regions.loc[1, "area"] = 32 * 32 - 36
    names = cluster_names(regions, (32, 32), [0, 1], known_features(featurizers, blocks))
    assert names[0] == "small flat saturated red square, top-left corner"
    assert names[1].startswith("very large ") and "grey" in names[1]
    # an embedding or a plugin's featurizer adds no words: the geometry remains
    plain = cluster_names(regions, (32, 32), [0, 1], known_features([RegionShape()], blocks[2:]))
    assert plain[0] == "small square, top-left corner"


def test_a_region_too_dark_for_its_hue_is_black_and_a_pure_blue_one_blue() -> None:
    rng = np.random.default_rng(1)
    image = rng.uniform(0.0, 0.08, (32, 32, 3))  # near-black noise: high HSV saturation
    image[:6, :6] = (0.0, 0.0, 1.0)  # pure blue, whose luminance is only 0.11
    labels = np.ones((32, 32), dtype=np.int64)
    labels[:6, :6] = 0
    color = ColorHistogram()
    features = known_features([color], [color.featurize(image.astype(np.float32), labels)])
    regions = _regions([(0, 0, 0, 0, 6, 6), (1, 0, 0, 0, 32, 32)])
    regions.loc[1, "area"] = 32 * 32 - 36
    names = cluster_names(regions, (32, 32), [0, 1], features)
    assert names[0] == "small saturated blue square, top-left corner"
    assert names[1].startswith("very large black ")


def test_names_are_distinct_and_the_same_every_time() -> None:
    # two clusters of squares in the same place, one larger: told apart by size
    regions = _regions(
        [(0, 0, 10, 10, 32, 32), (0, 1, 10, 10, 32, 32), (1, 2, 9, 9, 33, 33), (1, 3, 9, 9, 33, 33)]
    )
    names = cluster_names(regions, (100, 100), [1, 0])
    assert names == {
        0: "medium square, top-left corner (smaller)",
        1: "medium square, top-left corner (larger)",
    }
    assert cluster_names(regions, (100, 100), [1, 0]) == names
    # clusters alike in every descriptor are numbered in rank order
    twins = _regions([(0, 0, 0, 0, 9, 9), (1, 1, 0, 0, 9, 9), (2, 2, 0, 0, 9, 9)])
    named = cluster_names(twins, (100, 100), [2, 0, 1])
    assert len(set(named.values())) == 3


def test_a_comparison_names_every_cluster_and_keeps_the_names_when_saved(
    report_comparison: Any, tmp_path: Any
) -> None:
    from imacs.comparison.result import Comparison

    clusters = report_comparison.clusters
    assert list(clusters.columns[:2]) == ["cluster", "name"]
    names = clusters["name"].tolist()
    assert len(set(names)) == len(names) and all(names)
    # the planted patch, a small flat square in the top-left corner, is the top cluster
    assert names[0].startswith("small flat") and names[0].endswith("square, top-left corner")
    text = repr(report_comparison)
    assert f"({names[0]}): B - A" in text
    loaded = Comparison.load(report_comparison.save(tmp_path / "out", report=False, figures=False))
    assert names_of(loaded) == dict(zip(clusters["cluster"], names, strict=True))
    # a comparison saved before names: derived from the regions table (no colour words)
    older = dataclasses.replace(loaded, clusters=loaded.clusters.drop(columns="name"))
    assert names_of(older)[int(clusters["cluster"].iloc[0])] == "small square, top-left corner"


def test_models_are_called_by_name_or_by_letter_and_framework(report_comparison: Any) -> None:
    assert model_label(report_comparison, "a") == "A (numpy)"
    named = dataclasses.replace(
        report_comparison, models={**report_comparison.models, "b": {"name": "shortcut"}}
    )
    assert model_label(named, "b") == "shortcut"


def test_the_class_summary_counts_accuracy_and_agreement_per_label(
    report_comparison: Any,
) -> None:
    images = report_comparison.images
    table = class_summary(report_comparison)
    assert table["n_images"].sum() == (images["label"] >= 0).sum()
    for record in table.to_dict("records"):
        mine = images[images["label"] == record["label"]]
        assert record["accuracy_a"] == pytest.approx(mine["correct_a"].astype(float).mean())
        assert record["accuracy_b"] == pytest.approx(mine["correct_b"].astype(float).mean())
        assert record["agreement"] == pytest.approx((mine["pred_a"] == mine["pred_b"]).mean())


def test_the_clusters_behind_a_class_are_its_largest_shares_of_b_minus_a(
    report_comparison: Any,
) -> None:
    regions, images = report_comparison.regions, report_comparison.images
    carriers = class_clusters(report_comparison, top=2)
    for label, chosen in carriers.items():
        n_images = int((images["label"] == label).sum())
        mine = regions[regions["label"] == label]
        by_hand = (mine["mass_b"] - mine["mass_a"]).groupby(mine["cluster"]).sum() / n_images
        largest = by_hand.abs().sort_values(ascending=False, kind="stable").index[:2].tolist()
        assert [c for c, _ in chosen] == largest
        for cluster, value in chosen:
            assert value == pytest.approx(by_hand[cluster])
    # the planted patch carries B's side of every class
    top = int(report_comparison.clusters["cluster"].iloc[0])
    assert all(chosen[0] == (top, pytest.approx(chosen[0][1])) for chosen in carriers.values())
    assert all(chosen[0][1] > 0 for chosen in carriers.values())


def test_mean_maps_stream_to_the_means_of_all_maps(report_comparison: Any) -> None:
    size = (32, 32)
    means = mean_maps(report_comparison, size)
    n = len(report_comparison.images)
    planes = {
        side: np.stack(
            [display_map(report_comparison.attribution(i, side), size) for i in range(n)]
        )
        for side in ("a", "b")
    }
    stack, count = means["all"]
    assert count == n
    np.testing.assert_allclose(stack[0], planes["a"].mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(stack[1], planes["b"].mean(axis=0), atol=1e-12)
    labels = report_comparison.images["label"].to_numpy()
    stack, count = means["class:3"]
    assert count == int((labels == 3).sum())
    np.testing.assert_allclose(stack[1], planes["b"][labels == 3].mean(axis=0), atol=1e-12)
    regions = report_comparison.regions
    cluster = int(report_comparison.clusters["cluster"].iloc[1])
    holding = sorted(set(regions.loc[regions["cluster"] == cluster, "image"]))
    stack, count = means[f"cluster:{cluster}"]
    assert count == len(holding)
    np.testing.assert_allclose(stack[0], planes["a"][holding].mean(axis=0), atol=1e-12)
    where = np.mean(
        [
            np.isin(
                display_labels(np.asarray(report_comparison.segments(i)), size),
                regions.loc[(regions["image"] == i) & (regions["cluster"] == cluster), "region"],
            )
            for i in holding
        ],
        axis=0,
    )
    np.testing.assert_allclose(stack[2], where)


def test_the_notebook_summary_shows_names_thumbnails_and_accuracy_per_cluster(
    report_comparison: Any,
) -> None:
    html = summary_html(report_comparison)
    page = ET.fromstring(html)
    rows = page.findall(".//tbody/tr")
    clusters = report_comparison.clusters.head(len(rows))
    for row, record in zip(rows, clusters.to_dict("records"), strict=True):
        assert row[2].text == record["name"]
        thumbnails = row[3].findall("img")
        assert len(thumbnails) == min(3, record["n_images"])
        assert all(img.get("src", "").startswith("data:image/png;base64,") for img in thumbnails)
        accuracy = f"{100 * record['accuracy_a']:.1f}% / {100 * record['accuracy_b']:.1f}%"
        assert accuracy in ET.tostring(row, encoding="unicode")
    assert "hiding: drop A / B" in html
