"""The HTML report as a file: self-contained, complete, in rank order, and escaped."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imacs.comparison.scoring import normalise_map
from imacs.errors import InvalidInputError
from imacs.report.html import script_json, write_report
from imacs.report.images import (
    MAP_PERCENTILE,
    display_size,
    image_pixels,
    label_pixels,
    map_pixels,
    picture,
)


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text of every script element."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None


def parse(path: Path) -> _Tags:
    tags = _Tags()
    tags.feed(path.read_text(encoding="utf-8"))
    return tags


def blocks(path: Path) -> dict[str, Any]:
    """The JSON blocks of a report, by id."""
    return {
        str(attrs["id"]): json.loads(text)
        for attrs, text in parse(path).scripts
        if attrs.get("type") == "application/json"
    }


def png(encoded: str) -> np.ndarray:
    with Image.open(io.BytesIO(base64.b64decode(encoded))) as image:
        return np.asarray(image)


def test_the_report_is_one_file_that_fetches_nothing(report_file: Path) -> None:
    html = report_file.read_text(encoding="utf-8")
    tags = parse(report_file)
    for tag, attrs in tags.tags:
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            value = attrs.get(name)
            if value is not None and tag != "object":
                assert value.startswith(("#", "data:")), f"<{tag} {name}={value!r}> leaves the file"
    assert not re.search(r"url\(\s*['\"]?(?!data:|#)", html), "CSS must not load anything"
    assert "@import" not in html
    assert not any(tag == "link" for tag, _ in tags.tags)
    scripts = [attrs for attrs, _ in tags.scripts]
    assert all("src" not in attrs for attrs in scripts)
    # two JSON blocks and one script, and a policy that blocks any fetch the code might try
    assert sorted(str(a.get("type")) for a in scripts) == [
        "None",
        "application/json",
        "application/json",
    ]
    policy = next(
        a["content"] for t, a in tags.tags if a.get("http-equiv") == "Content-Security-Policy"
    )
    assert policy is not None and "default-src 'none'" in policy and "img-src data:" in policy
    # the one absolute URL in the file is the SVG namespace the script names
    assert re.findall(r"https?://[^\s'\"<>]+", html) == ["http://www.w3.org/2000/svg"]


def test_the_report_holds_every_image_and_cluster_in_rank_order(
    report_comparison: Any, report_file: Path
) -> None:
    data = blocks(report_file)
    page, pixels = data["imacs-data"], data["imacs-pixels"]
    n_images = len(report_comparison.images)
    assert page["images"]["name"] == report_comparison.images["name"].tolist()
    assert page["images"]["label"] == report_comparison.images["label"].tolist()
    assert len(pixels["picture"]) == len(pixels["sheet"]) == n_images
    assert png(pixels["picture"][n_images - 1]).shape == (32, 32, 3)
    assert png(pixels["sheet"][n_images - 1]).shape == (64, 32, 3)
    assert len(page["regions"]["image"]) == len(report_comparison.regions)

    ranked = report_comparison.clusters["cluster"].tolist()
    assert [c["cluster"] for c in page["clusters"]] == ranked
    rows = [
        (int(a["data-cluster"]), int(a["data-rank"]))
        for t, a in parse(report_file).tags
        if a.get("data-testid") == "cluster-row"
    ]
    assert rows == list(zip(ranked, report_comparison.clusters["rank"].tolist(), strict=True))
    for cluster in page["clusters"]:
        members = report_comparison.regions.index[
            report_comparison.regions["cluster"] == cluster["cluster"]
        ]
        assert sorted(cluster["regions"]) == sorted(members.tolist())
        images = [page["regions"]["image"][r] for r in cluster["exemplars"]]
        assert len(set(images)) == len(images) and 1 <= len(images) <= 5
    # the contract the browser test and the benchmark rely on
    html = report_file.read_text(encoding="utf-8")
    for testid in (
        "overview", "cluster-list", "cluster-view", "image-view", "agreement", "filter-class",
        "filter-selected-by", "filter-correct", "drill-image", "drill-map-a", "drill-map-b",
        "drill-diff",
    ):  # fmt: skip
        assert f'data-testid="{testid}"' in html


def test_exemplars_are_the_regions_with_most_attribution(
    report_comparison: Any, report_file: Path
) -> None:
    regions = report_comparison.regions
    top = blocks(report_file)["imacs-data"]["clusters"][0]
    weight = (regions["abs_a"] + regions["abs_b"]).to_numpy()
    first = top["regions"][0]
    members = regions.index[regions["cluster"] == top["cluster"]]
    assert weight[first] == pytest.approx(weight[members].max())
    assert weight[top["exemplars"]].tolist() == sorted(weight[top["exemplars"]], reverse=True)


def test_maps_and_labels_decode_back_to_the_stored_arrays(
    report_comparison: Any, report_file: Path
) -> None:
    data = blocks(report_file)
    images, pixels = data["imacs-data"]["images"], data["imacs-pixels"]
    for index in (0, 5, len(report_comparison.images) - 1):
        sheet = png(pixels["sheet"][index]).astype(np.int64)
        np.testing.assert_array_equal(
            sheet[:32] @ np.array([1, 256, 65536]), report_comparison.segments(index)
        )
        codes = sheet[32:].astype(np.float64)
        for channel, side in enumerate("ab"):
            scale = images[f"scale_{side}"][index]
            decoded = (codes[..., channel] - 128) / 127 * scale
            original = np.clip(
                normalise_map(report_comparison.attribution(index, side)), -scale, scale
            )
            np.testing.assert_allclose(decoded, original, atol=scale / 127 * 0.51 + 1e-6)
        assert (codes[..., 2] == 128).all()
        assert pixels["picture"][index].startswith("iVBOR")  # small flat images stay PNG
        shown = png(pixels["picture"][index]).astype(np.float64) / 255
        np.testing.assert_allclose(shown, report_comparison.image(index), atol=0.5 / 255 + 1e-6)


def test_strings_from_the_data_never_reach_the_page_as_markup(
    hostile_comparison: Any, hostile_report: Path, hostile: Any
) -> None:
    html = hostile_report.read_text(encoding="utf-8")
    # the raw strings are nowhere: not in the JSON, not in the markup, not in the title
    assert hostile.script not in html
    assert "<img" not in html and "<b>bold" not in html
    assert hostile.model not in html
    tags = parse(hostile_report)
    assert not any(tag == "img" for tag, _ in tags.tags)
    assert not any(name.startswith("on") for _, attrs in tags.tags for name in attrs)
    assert [t for t, a in tags.tags if t == "script"] == ["script"] * 3
    # they are there, escaped: as JSON inside the data blocks, as entities in the markup
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # class names in the cluster list
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in html  # the model's name
    data = blocks(hostile_report)["imacs-data"]
    assert data["meta"]["class_names"] == list(hostile.classes)
    assert data["images"]["name"] == [hostile.file_name(i) for i in range(24)]
    assert hostile_comparison.images["name"].tolist() == data["images"]["name"]


def test_script_json_cannot_close_its_script_element() -> None:
    text = script_json({"name": "</script><script>alert(1)</script><!--", "amp": "&lt;"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {
        "name": "</script><script>alert(1)</script><!--",
        "amp": "&lt;",
    }


def test_a_comparison_without_a_store_is_refused_with_what_to_do(
    report_comparison: Any, tmp_path: Path
) -> None:
    detached = dataclasses.replace(report_comparison, store=None)
    with pytest.raises(InvalidInputError, match=r"store=None\).*imacs.compare\(\.\.\., store="):
        write_report(detached, tmp_path / "report.html", progress=False)
    gone = dataclasses.replace(report_comparison, store=str(tmp_path / "nowhere"))
    with pytest.raises(InvalidInputError, match="not a folder"):
        write_report(gone, tmp_path / "report.html", progress=False)
    assert not (tmp_path / "report.html").exists()


def test_a_folder_gets_report_html_and_progress_false_is_silent(
    report_comparison: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = write_report(report_comparison, tmp_path, progress=False, title="My <b>report</b>")
    assert out == tmp_path / "report.html" and out.is_file()
    assert capsys.readouterr() == ("", "")
    assert "<title>My &lt;b&gt;report&lt;/b&gt;</title>" in out.read_text(encoding="utf-8")


def test_large_images_are_scaled_down_and_labels_stay_labels() -> None:
    assert display_size(32, 32) == (32, 32)
    assert display_size(224, 448) == (64, 128)
    assert display_size(1000, 10, max_side=100) == (100, 1)
    labels = np.arange(200 * 200, dtype=np.int64).reshape(200, 200) * 401  # up to 16 M
    decoded = label_pixels(labels, (100, 100)).astype(np.int64) @ [1, 256, 65536]
    assert set(np.unique(decoded)) <= set(np.unique(labels))
    assert decoded[0, 0] in labels[:2, :2] and decoded.max() > 1 << 16


def test_images_in_either_pixel_range_and_channel_count_encode_alike() -> None:
    rng = np.random.default_rng(0)
    unit = rng.uniform(0, 1, (16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(image_pixels(unit, (16, 16)), image_pixels(unit * 255, (16, 16)))
    grey = image_pixels(unit[..., :1], (8, 8))
    assert grey.shape == (8, 8, 3) and (grey[..., 0] == grey[..., 2]).all()
    rgba = np.concatenate([unit, unit[..., :1]], -1)
    np.testing.assert_array_equal(image_pixels(rgba, (16, 16)), image_pixels(unit, (16, 16)))


def test_photographs_become_jpeg_and_flat_pictures_stay_png() -> None:
    from skimage import data

    photo = data.astronaut()[:256, :256].astype(np.float32)
    assert png_array(picture(photo, (128, 128))).shape == (128, 128, 3)
    assert picture(photo, (128, 128))[:3] == b"\xff\xd8\xff"  # JPEG
    flat = np.zeros((32, 32, 3), np.float32)
    flat[4:20, 8:12] = 1.0
    assert picture(flat, (32, 32))[:4] == b"\x89PNG"


def test_map_codes_use_each_maps_own_scale() -> None:
    rng = np.random.default_rng(1)
    map_a = rng.normal(size=(20, 20, 3))
    map_b = np.zeros((20, 20))
    map_b[:3, :3] = 1.0  # all of B's attribution on a corner
    codes, scale_a, scale_b = map_pixels(map_a, map_b, (20, 20))
    normalised_a = normalise_map(map_a)
    assert scale_a == pytest.approx(np.percentile(np.abs(normalised_a), MAP_PERCENTILE))
    assert scale_b == pytest.approx(1 / 9)
    assert codes[0, 0, 1] == 255 and codes[10, 10, 1] == 128
    assert codes[..., 0].min() >= 1 and (codes[..., 0] == 255).sum() <= 3


def png_array(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


def test_unlabelled_images_and_no_regions_still_make_a_report(
    bare_comparison: Any, tmp_path: Path
) -> None:
    out = write_report(bare_comparison, tmp_path / "report.html", progress=False)
    html = out.read_text(encoding="utf-8")
    assert "No salient regions" in html and 'data-testid="cluster-row"' not in html
    assert "n/a" in html  # no accuracy without labels
    data = blocks(out)["imacs-data"]
    assert data["images"]["correct_a"] == [None] * len(bare_comparison.images)
    assert data["clusters"] == [] and data["regions"]["image"] == []
