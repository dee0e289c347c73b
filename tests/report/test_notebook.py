"""The HTML summary a comparison shows in a notebook."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import imacs
from imacs.demo.data import shortcut_digits, split_indices
from imacs.report.notebook import format_q, summary_html
from imacs.report.style import COLOR_A, COLOR_B
from imacs.testing.planted import planted_models

# a fixed k skips the search over k, which the comparison tests cover
FAST = {"method_params": {"n_steps": 8}, "n_permutations": 200, "n_clusters": 8, "progress": False}
SVG = "{http://www.w3.org/2000/svg}"
EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> Any:
    _, test = split_indices()
    data = shortcut_digits(test[:96], shortcut=False, seed=7)
    store = tmp_path_factory.mktemp("store")
    result = imacs.compare(*planted_models(), data.images, data.labels, store=store, **FAST)
    # the summary reads nothing from the store: point it at a folder that is not there
    return dataclasses.replace(result, store=str(store / "moved-away"))


def test_the_summary_shows_both_models_and_the_top_clusters(comparison: Any) -> None:
    html = comparison._repr_html_()
    assert html == summary_html(comparison)
    page = ET.fromstring(html)  # well formed: every tag closed, every string escaped
    summary = comparison.summary()
    assert f"accuracy {100 * summary['accuracy_a']:.1f}%" in html
    assert f"accuracy {100 * summary['accuracy_b']:.1f}%" in html
    assert f"agree on {100 * summary['agreement']:.1f}%" in html
    assert f"in {summary['n_clusters']} clusters, {summary['significant_clusters']} with" in html
    top = comparison.clusters.iloc[0]
    assert f"{top['difference']:+.4f} [{top['ci_low']:+.4f}, {top['ci_high']:+.4f}]" in html
    assert f"{format_q(top['q_value'])} *" in html
    assert f"{top['n_regions']} / {top['n_images']}" in html
    rows = page.findall(".//tbody/tr")
    assert len(rows) == min(10, len(comparison.clusters))
    assert [int(row[1].text or "") for row in rows] == comparison.clusters["cluster"].head(
        10
    ).tolist()
    assert not (Path(comparison.store)).exists()


def test_each_bar_takes_the_colour_of_the_model_that_relies_more(comparison: Any) -> None:
    page = ET.fromstring(summary_html(comparison))
    bars = [svg.find(f"{SVG}rect") for svg in page.iter(f"{SVG}svg")]
    clusters = comparison.clusters.head(10)
    assert len(bars) == len(clusters)
    assert not clusters["significant"].all()
    for bar, row in zip(bars, clusters.itertuples(), strict=True):
        assert bar is not None
        colour = COLOR_B if row.difference > 0 else COLOR_A
        assert bar.get("stroke") == colour
        assert bar.get("fill") == (colour if row.significant else "white")
    # the longest bar is the largest difference, drawn to the right of zero when B > A
    widths = [float(bar.get("width") or 0) for bar in bars if bar is not None]
    assert widths.index(max(widths)) == int(clusters["difference"].abs().argmax())


def test_model_and_class_names_are_escaped(comparison: Any) -> None:
    models = {side: {**comparison.models[side], "name": EVIL} for side in ("a", "b")}
    classes = comparison.classes.assign(class_name=EVIL)
    evil = dataclasses.replace(
        comparison,
        models=models,
        classes=classes,
        dataset={**comparison.dataset, "class_names": [EVIL] * 10},
        settings={**comparison.settings, "method": {"name": EVIL, "params": {}}},
    )
    html = summary_html(evil)
    assert "<script" not in html
    # two model names in the models table and two in the headline, the method, and a
    # class per cluster row
    rows = min(10, len(comparison.clusters))
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2 + 2 + 1 + rows
    ET.fromstring(html)


def test_class_names_come_from_the_dataset_when_the_table_has_none(comparison: Any) -> None:
    names = [f"digit-{k}" for k in range(10)]
    named = dataclasses.replace(comparison, dataset={**comparison.dataset, "class_names": names})
    assert "class_name" not in named.classes
    assert "digit-" in summary_html(named)
    assert "digit-" not in summary_html(comparison)
