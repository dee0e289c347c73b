"""The HTML report in a real browser: headless Chromium opens it from disk and clicks through.

:func:`check_report` is the whole walk through a report, for any report file; the tests
run it on the report ``imacs demo`` writes and on reports of the planted NumPy
comparison. :func:`save_screenshot` saves a picture of any view of a report, e.g. for
the docs::

    python tests/report/test_browser.py report.html docs/report.png --route "#cluster/3"
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imacs.testing.browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT

TIMEOUT_MS = 15_000

#: JS: whether a canvas (or img) shows something: a size, opaque pixels, more than one colour
DRAWN = """(node) => {
  if (node.tagName === 'IMG') return node.complete && node.naturalWidth > 0;
  if (!node.width || !node.height) return false;
  const data = node.getContext('2d').getImageData(0, 0, node.width, node.height).data;
  let opaque = 0, low = 765, high = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] === 0) continue;
    opaque++;
    const v = data[i] + data[i + 1] + data[i + 2];
    low = Math.min(low, v);
    high = Math.max(high, v);
  }
  return opaque > 0 && high > low;
}"""


def chromium_path() -> str:
    """Debian's Chromium, or a failure that says how to install it (never a skip)."""
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if found is None:
        pytest.fail(
            f"the report's browser tests need Chromium at {CHROMIUM}; install Debian's "
            "package: apt-get install -y chromium",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        yield launched
        launched.close()


class PageWatch:
    """A page that records console errors, page errors, dialogs and outside requests."""

    def __init__(self, browser: Any, report: Path):
        self.url = report.resolve().as_uri()
        self.page = browser.new_page(viewport=VIEWPORT)
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.on("dialog", self._dialog)
        self.page.on("request", self._request)

    def _console(self, message: Any) -> None:
        if message.type in ("error", "assert"):
            self.errors.append(f"console {message.type}: {message.text}")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _request(self, request: Any) -> None:
        url = request.url.split("#")[0]
        if url != self.url and not url.startswith("data:"):
            self.requests.append(url)

    def open(self, route: str = "") -> Any:
        self.page.goto(self.url + route)
        self.page.wait_for_selector("body[data-ready=true]", state="attached")
        return self.page

    def assert_clean(self) -> None:
        assert not self.errors, self.errors
        assert not self.dialogs, f"the page opened dialogs: {self.dialogs}"
        assert not self.requests, f"the page fetched from outside the file: {self.requests}"


def drawn(page: Any, selector: str) -> bool:
    return bool(page.locator(selector).first.evaluate(DRAWN))


def check_report(browser: Any, report: Path, screenshot: Path | None = None) -> dict[str, Any]:
    """Walk through a report the way a reader does, asserting as it goes.

    Opens ``report`` from disk, finds the ranked clusters, opens the top one, pages and
    filters its tiles, opens an image, checks that every drill-down canvas is drawn, goes
    back, and checks that nothing was fetched and nothing logged an error. Saves a
    screenshot of the image view to ``screenshot`` when given. Returns what it saw.
    """
    watch = PageWatch(browser, report)
    page = watch.open()
    try:
        overview = page.get_by_test_id("overview")
        assert overview.is_visible()
        assert "accuracy of" in overview.inner_text()
        rows = page.get_by_test_id("cluster-list").get_by_test_id("cluster-row")
        n_clusters = rows.count()
        assert n_clusters >= 1
        ranks = [int(r) for r in rows.evaluate_all("rows => rows.map(r => r.dataset.rank)")]
        assert ranks == list(range(1, n_clusters + 1))
        assert page.get_by_test_id("agreement").locator("figure.histogram").count() >= 1
        first_exemplar = rows.first.locator("canvas.exemplar").first
        first_exemplar.scroll_into_view_if_needed()
        page.wait_for_function("() => document.querySelector('canvas.exemplar').dataset.ready")
        assert first_exemplar.evaluate(DRAWN)

        # the top cluster, by clicking its row
        top = rows.first
        cluster = top.get_attribute("data-cluster")
        top.locator("td.rank").click()
        view = page.get_by_test_id("cluster-view")
        view.wait_for(state="visible")
        page.wait_for_selector("[data-testid=cluster-view][data-ready=true]")
        assert page.evaluate("location.hash") == f"#cluster/{cluster}"
        assert not page.get_by_test_id("overview").is_visible()
        tiles = view.get_by_test_id("region-tile")
        n_tiles = tiles.count()
        assert n_tiles >= 1
        assert all(tiles.nth(k).locator("canvas").evaluate(DRAWN) for k in range(n_tiles))

        # paging and filtering keep only the current page's tiles in the DOM
        info = view.get_by_test_id("page-info").first.inner_text()
        if not info.endswith("of 1"):
            view.get_by_test_id("page-next").first.click()
            page.wait_for_selector("[data-testid=cluster-view][data-ready=true]")
            assert "page 2" in view.get_by_test_id("page-info").first.inner_text()
            assert tiles.count() <= n_tiles
            view.get_by_test_id("page-prev").first.click()
            page.wait_for_selector("[data-testid=cluster-view][data-ready=true]")
        for name in ("filter-selected-by", "filter-correct", "filter-class"):
            options = view.get_by_test_id(name).locator("option")
            values = options.evaluate_all("options => options.map(o => o.value)")
            assert values[0] == "all" and len(values) >= 2
            for value in values[1:]:
                view.get_by_test_id(name).select_option(value)
                page.wait_for_selector("[data-testid=cluster-view][data-ready=true]")
                assert tiles.count() <= n_tiles
            view.get_by_test_id(name).select_option("all")
            page.wait_for_selector("[data-testid=cluster-view][data-ready=true]")
        assert tiles.count() == n_tiles

        # one image, by clicking a tile
        tile = tiles.first
        image = tile.get_attribute("data-image")
        tile.click()
        image_view = page.get_by_test_id("image-view")
        image_view.wait_for(state="visible")
        page.wait_for_selector("[data-testid=image-view][data-ready=true]")
        assert page.evaluate("location.hash").startswith(f"#image/{image}")
        for testid in ("drill-image", "drill-map-a", "drill-map-b", "drill-diff"):
            target = image_view.get_by_test_id(testid)
            assert target.is_visible(), testid
            assert drawn(page, f"[data-testid={testid}]"), f"{testid} is blank"
        facts = image_view.inner_text()
        assert "prediction" in facts and "spearman" in facts
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)

        # Back returns to the cluster, then to the list
        page.go_back()
        view.wait_for(state="visible")
        page.wait_for_selector("[data-testid=cluster-view][data-ready=true]")
        page.go_back()
        page.get_by_test_id("overview").wait_for(state="visible")
        watch.assert_clean()
        return {"clusters": n_clusters, "tiles": n_tiles, "cluster": cluster, "image": image}
    finally:
        watch.page.close()


def save_screenshot(
    browser: Any,
    report: Path,
    out: Path,
    *,
    route: str = "",
    full_page: bool = True,
    width: int = VIEWPORT["width"],
    height: int = VIEWPORT["height"],
) -> Path:
    """Save a PNG of ``report`` at ``route`` (``""``, ``"#cluster/3"``, ``"#image/0"``).

    Every exemplar and tile is drawn before the picture is taken, also those below the
    fold, so that a full-page screenshot shows them.
    """
    watch = PageWatch(browser, report)
    page = watch.page
    try:
        page.set_viewport_size({"width": width, "height": height})
        watch.open(route)
        if route.startswith("#cluster/"):
            page.wait_for_selector("[data-testid=cluster-view][data-ready=true]")
        elif route.startswith("#image/"):
            page.wait_for_selector("[data-testid=image-view][data-ready=true]")
        elif full_page:
            # exemplars draw as they scroll into view: scroll through the list once
            page.evaluate(
                """async () => {
                  const pause = () => new Promise((done) => setTimeout(done, 50));
                  for (let y = 0; y < document.body.scrollHeight; y += innerHeight / 2) {
                    window.scrollTo(0, y);
                    await pause();
                  }
                }"""
            )
            page.wait_for_function(
                "() => [...document.querySelectorAll('canvas.exemplar')]"
                ".every(c => c.dataset.ready === 'true')"
            )
            page.evaluate("window.scrollTo(0, 0)")
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=full_page)
        return out
    finally:
        page.close()


def test_a_reader_can_walk_through_the_report(
    browser: Any, report_file: Path, tmp_path: Path
) -> None:
    seen = check_report(browser, report_file, screenshot=tmp_path / "image-view.png")
    assert (tmp_path / "image-view.png").stat().st_size > 10_000
    assert seen["clusters"] >= 4
    # page_size=12 and the planted patch is in almost every image: several pages
    assert seen["tiles"] == 12


@pytest.mark.torch
@pytest.mark.tensorflow
def test_the_demos_report_opens_from_disk_and_leads_to_the_planted_patch(
    browser: Any, demo_run: Any, tmp_path: Path
) -> None:
    from imacs.comparison.result import Comparison
    from imacs.testing.planted import patch_share

    out, process = demo_run
    assert process.returncode == 0, process.stderr[-3000:]
    screenshot = tmp_path / "demo-image-view.png"
    seen = check_report(browser, out / "report.html", screenshot=screenshot)
    assert screenshot.stat().st_size > 10_000
    comparison = Comparison.load(out)
    top = int(comparison.clusters["cluster"].iloc[0])
    assert int(seen["cluster"]) == top  # the first row the reader clicked
    assert patch_share(comparison, top) > 0.5  # is the planted shortcut


def test_the_demos_report_opens_with_the_headline_and_the_causal_numbers(
    browser: Any, demo_run: Any
) -> None:
    from imacs.comparison.result import Comparison

    out, process = demo_run
    assert process.returncode == 0, process.stderr[-3000:]
    comparison = Comparison.load(out)
    top = comparison.clusters.iloc[0]
    watch = PageWatch(browser, out / "report.html")
    page = watch.open()
    headline = page.get_by_test_id("headline").inner_text()
    # the headline names the top cluster, who relies more, and what hiding it does
    assert f"the {top['name']} regions (cluster {int(top['cluster'])}, " in headline
    assert headline.startswith("B (shortcut-keras) relies more than A (clean-torch)")
    assert f"{top['difference']:+.3f}" in headline
    assert f"lowers B's probability for its target by {abs(top['causal_drop_b']):.2f}" in headline
    # the headline comes before the clusters, the first thing after the page header
    boxes = page.evaluate(
        "['headline', 'clusters'].map(id => document.getElementById(id).offsetTop)"
    )
    assert boxes[0] < boxes[1]
    # the cluster list shows each model's drop for the checked clusters
    first = page.get_by_test_id("cluster-row").first.get_by_test_id("causal").inner_text()
    assert first == f"{top['causal_drop_a']:+.2f} / {top['causal_drop_b']:+.2f}"
    checked = int((comparison.clusters["causal_images"] > 0).sum())
    assert checked == min(5, len(comparison.clusters))
    # the cluster page says it too
    page.get_by_test_id("cluster-row").first.click()
    summary = page.locator("#cluster-summary").inner_text()
    assert f"B's by {top['causal_drop_b']:+.3f}" in summary
    watch.assert_clean()


@pytest.mark.torch
@pytest.mark.tensorflow
@pytest.mark.parametrize("width", [1280, 1440])
def test_the_ranked_table_fits_a_laptop_screen(browser: Any, demo_run: Any, width: int) -> None:
    out, process = demo_run
    assert process.returncode == 0, process.stderr[-3000:]
    watch = PageWatch(browser, out / "report.html")
    watch.page.set_viewport_size({"width": width, "height": 800})
    page = watch.open()
    fit = page.evaluate(
        """() => {
          const table = document.querySelector('.cluster-table');
          const section = table.closest('.card-section');
          const style = getComputedStyle(section);
          const inner = section.getBoundingClientRect().right
            - parseFloat(style.paddingRight) - parseFloat(style.borderRightWidth);
          const last = table.querySelector('thead th:last-child').getBoundingClientRect();
          return {page: document.documentElement.scrollWidth,
                  table: table.getBoundingClientRect().right, inner: inner, last: last.right,
                  lines: new Set([...table.querySelector('tbody tr').querySelectorAll('canvas')]
                    .map(c => Math.round(c.getBoundingClientRect().top))).size};
        }"""
    )
    # every column, the last one too, inside the card; the page never scrolls sideways
    assert fit["page"] <= width, fit
    assert fit["table"] <= fit["inner"] + 0.5 and fit["last"] <= fit["inner"] + 0.5, fit
    assert fit["lines"] == 1, fit  # the example thumbnails on one line
    watch.assert_clean()


def test_the_routes_open_directly_and_screenshots_are_saved(
    browser: Any, report_comparison: Any, report_file: Path, tmp_path: Path
) -> None:
    top = int(report_comparison.clusters["cluster"].iloc[0])
    for name, route in (("list", ""), ("cluster", f"#cluster/{top}"), ("image", "#image/3")):
        out = save_screenshot(browser, report_file, tmp_path / f"{name}.png", route=route)
        assert out.stat().st_size > 10_000
    watch = PageWatch(browser, report_file)
    page = watch.open(f"#cluster/{top}?page=2&by=b")
    page.wait_for_selector("[data-testid=cluster-view][data-ready=true]")
    assert page.get_by_test_id("filter-selected-by").input_value() == "b"
    assert "page 2" in page.get_by_test_id("page-info").first.inner_text()
    assert page.locator("[data-testid=region-tile]").count() <= 12
    # a hash that names nothing shows the list and says so in the console, nothing worse
    page.evaluate("location.hash = '#cluster/99999'")
    page.get_by_test_id("overview").wait_for(state="visible")
    assert watch.errors == [
        "console error: imacs report: There is no cluster 99999 in this report."
    ]
    watch.errors.clear()
    watch.assert_clean()
    page.close()


def test_a_report_without_labels_or_regions_opens_cleanly(
    browser: Any, bare_comparison: Any, tmp_path: Path
) -> None:
    from imacs.report.html import write_report

    report = write_report(bare_comparison, tmp_path / "report.html", progress=False)
    watch = PageWatch(browser, report)
    page = watch.open()
    try:
        assert "No salient regions" in page.get_by_test_id("cluster-list").inner_text()
        page.evaluate("location.hash = '#image/2'")
        page.get_by_test_id("image-view").wait_for(state="visible")
        page.wait_for_selector("[data-testid=image-view][data-ready=true]")
        assert drawn(page, "[data-testid=drill-map-b]")
        assert "unlabelled" in page.get_by_test_id("image-label").inner_text()
        watch.assert_clean()
    finally:
        page.close()


def test_hostile_names_are_shown_as_text_and_never_run(
    browser: Any, hostile_report: Path, hostile: Any
) -> None:
    from playwright.sync_api import expect

    check_report(browser, hostile_report)
    watch = PageWatch(browser, hostile_report)
    page = watch.open()
    try:
        assert hostile.script in page.title()
        assert hostile.model in page.get_by_test_id("overview").inner_text()
        assert hostile.script in page.get_by_test_id("cluster-list").inner_text()
        top = page.get_by_test_id("cluster-row").first.get_attribute("data-cluster")
        page.evaluate(f"location.hash = '#cluster/{top}'")
        page.wait_for_selector("[data-testid=cluster-view][data-ready=true]")
        options = page.get_by_test_id("filter-class").locator("option").all_inner_texts()
        assert any(hostile.script in text for text in options[1:])
        tile = page.get_by_test_id("region-tile").first
        index = int(tile.get_attribute("data-image") or -1)
        assert tile.locator(".tile-name").inner_text() == hostile.file_name(index)
        tile.click()
        page.wait_for_selector("[data-testid=image-view][data-ready=true]")
        assert page.get_by_test_id("image-name").inner_text() == hostile.file_name(index)
        assert hostile.script in page.get_by_test_id("image-label").inner_text()
        for odd in range(1, 6, 2):  # the names with an <img onerror=...> in them
            page.evaluate(f"location.hash = '#image/{odd}'")
            expect(page.get_by_test_id("image-name")).to_have_text(hostile.file_name(odd))
            page.wait_for_selector("[data-testid=image-view][data-ready=true]")
        assert page.locator("img").count() == 0
        assert page.locator("b:has-text('bold')").count() == 0
        watch.assert_clean()
    finally:
        page.close()


# -- the views a reader uses to find their way: one test per view -------------------------

#: JS: a cheap digest of a canvas's pixels, to tell two drawings apart
DIGEST = """(node) => {
  const data = node.getContext('2d').getImageData(0, 0, node.width, node.height).data;
  let hash = 0;
  for (let i = 0; i < data.length; i++) hash = (hash * 31 + data[i]) | 0;
  return hash;
}"""


@pytest.fixture(scope="module")
def named_report(report_comparison: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The planted comparison's report with both models named."""
    import dataclasses

    from imacs.report.html import write_report

    models = {
        "a": {**report_comparison.models["a"], "name": "clean-numpy"},
        "b": {**report_comparison.models["b"], "name": "shortcut-numpy"},
    }
    named = dataclasses.replace(report_comparison, models=models)
    path = tmp_path_factory.mktemp("named-report") / "report.html"
    return write_report(named, path, progress=False, page_size=12)


def test_clusters_are_named_in_words_and_models_by_their_names(
    browser: Any, report_comparison: Any, named_report: Path
) -> None:
    clusters = report_comparison.clusters
    names = clusters["name"].tolist()
    assert len(set(names)) == len(names)  # distinct
    watch = PageWatch(browser, named_report)
    page = watch.open()
    try:
        assert page.title() == "imacs: clean-numpy vs shortcut-numpy"
        legend = page.get_by_test_id("legend").inner_text()
        assert "A: clean-numpy" in legend and "B: shortcut-numpy" in legend
        assert "outline: who relies more" in page.get_by_test_id("outline-legend").inner_text()
        overview = page.get_by_test_id("overview").inner_text()
        assert "accuracy of clean-numpy" in overview and "accuracy of shortcut-numpy" in overview
        shown = page.get_by_test_id("cluster-name").all_inner_texts()
        assert shown == names
        # the headline speaks of the top cluster by its name
        assert f"the {names[0]} regions" in page.get_by_test_id("headline").inner_text()
        page.get_by_test_id("cluster-row").first.click()
        page.wait_for_selector("[data-testid=cluster-view][data-ready=true]")
        assert page.get_by_test_id("cluster-title-name").inner_text() == names[0]
        page.get_by_test_id("region-tile").first.click()
        page.wait_for_selector("[data-testid=image-view][data-ready=true]")
        text = page.get_by_test_id("image-view").inner_text()
        assert names[0] in text and "clean-numpy" in text and "shortcut-numpy" in text
        watch.assert_clean()
    finally:
        watch.page.close()


def test_the_per_class_view_shows_accuracy_agreement_and_the_clusters_behind_each_class(
    browser: Any, report_comparison: Any, report_file: Path
) -> None:
    from imacs.comparison.summaries import class_clusters, class_summary

    table = class_summary(report_comparison)
    carriers = class_clusters(report_comparison)
    watch = PageWatch(browser, report_file)
    page = watch.open("#classes")
    try:
        rows = page.get_by_test_id("class-row")
        assert rows.count() == len(table)
        for k, record in enumerate(table.to_dict("records")):
            row = rows.nth(k)
            assert row.get_attribute("data-label") == str(record["label"])
            assert row.locator("td.class-name").inner_text() == f"digit {record['label']}"
            accuracy = row.get_by_test_id("class-accuracy-a").inner_text()
            assert accuracy == f"{100 * record['accuracy_a']:.1f}%"
            agreement = row.get_by_test_id("class-agreement").inner_text()
            assert agreement == f"{100 * record['agreement']:.1f}%"
            links = row.get_by_test_id("class-cluster")
            expected = [c for c, _ in carriers.get(record["label"], [])]
            assert [
                int(h.split("/")[1]) for h in links.evaluate_all("a => a.map(x => x.hash)")
            ] == expected
        # the class's mean maps are drawn once they are on screen
        first = rows.first.locator("canvas.mean-map").first
        first.scroll_into_view_if_needed()
        page.wait_for_function(
            "() => document.querySelector('[data-testid=class-row] canvas').dataset.ready"
        )
        assert first.evaluate(DRAWN)
        # a cluster behind the class opens its page
        link = rows.first.get_by_test_id("class-cluster").first
        cluster = link.get_attribute("href")
        link.click()
        page.wait_for_selector("[data-testid=cluster-view][data-ready=true]")
        assert page.evaluate("location.hash") == cluster
        watch.assert_clean()
    finally:
        watch.page.close()


def test_mean_maps_are_drawn_for_the_dataset_and_for_a_cluster(
    browser: Any, report_comparison: Any, report_file: Path
) -> None:
    watch = PageWatch(browser, report_file)
    page = watch.open("#means")
    try:
        for kind in ("a", "b", "diff"):
            canvas = page.get_by_test_id(f"mean-all-{kind}")
            canvas.scroll_into_view_if_needed()
            page.wait_for_selector(f"[data-testid=mean-all-{kind}][data-ready=true]")
            assert canvas.evaluate(DRAWN), kind
        # B, the shortcut model, looks at the top-left patch: its mean map is darkest there
        corner_vs_centre = page.get_by_test_id("mean-all-b").evaluate(
            """(node) => {
              const c = node.getContext('2d');
              const at = (x, y) => {
                const d = c.getImageData(x * node.width, y * node.height, 1, 1).data;
                return d[0] + d[1] + d[2];
              };
              return [at(0.08, 0.08), at(0.5, 0.5)];
            }"""
        )
        assert corner_vs_centre[0] < corner_vs_centre[1]
        top = int(report_comparison.clusters["cluster"].iloc[0])
        page.evaluate(f"location.hash = '#cluster/{top}'")
        page.wait_for_selector("[data-testid=cluster-means][data-ready=true]")
        for kind in ("a", "b", "diff", "where"):
            assert drawn(page, f"#cluster-mean-{kind}"), kind
        n_images = int(report_comparison.clusters["n_images"].iloc[0])
        assert f"over the {n_images} images" in page.locator("#cluster-means-note").inner_text()
        watch.assert_clean()
    finally:
        watch.page.close()


def test_images_are_found_by_file_name(
    browser: Any, report_comparison: Any, report_file: Path
) -> None:
    names = report_comparison.images["name"].tolist()
    query = names[5][2:]  # part of a name
    expected = [k for k, name in enumerate(names) if query.lower() in name.lower()]
    watch = PageWatch(browser, report_file)
    page = watch.open()
    try:
        search = page.get_by_test_id("search")
        search.fill(query.upper())  # case does not matter
        hits = page.get_by_test_id("search-hit")
        assert [int(h) for h in hits.evaluate_all("a => a.map(x => x.dataset.image)")] == expected
        hits.first.click()
        page.wait_for_selector("[data-testid=image-view][data-ready=true]")
        assert page.get_by_test_id("image-name").inner_text() == names[expected[0]]
        assert page.get_by_test_id("search-results").is_hidden()
        search.fill("no such file")
        assert "no image name" in page.get_by_test_id("search-count").inner_text()
        assert hits.count() == 0
        # Enter opens the first match
        search.fill(names[7])
        search.press("Enter")
        page.wait_for_selector("[data-testid=image-view][data-ready=true]")
        assert page.evaluate("location.hash") == "#image/7"
        watch.assert_clean()
    finally:
        watch.page.close()


def test_a_histogram_bin_lists_its_images_and_the_most_disagreeing_maps_come_first(
    browser: Any, report_comparison: Any, report_file: Path
) -> None:
    import numpy as np

    images = report_comparison.images
    metric = report_comparison.settings["metrics"][0]
    values = images[metric].to_numpy(dtype=float)
    watch = PageWatch(browser, report_file)
    page = watch.open("#agreement")
    try:
        bins = page.locator(f"[data-testid=hist-bin][data-metric={metric}]")
        counts = [int(c) for c in bins.evaluate_all("g => g.map(x => x.dataset.count)")]
        assert sum(counts) == int(np.isfinite(values).sum())
        fullest = int(np.argmax(counts))
        bins.nth(fullest).click()
        listed = page.get_by_test_id("bin-images").get_by_test_id("bin-image")
        assert listed.count() == counts[fullest]
        indices = [int(i) for i in listed.evaluate_all("a => a.map(x => x.dataset.image)")]
        low = -1.0 if np.nanmin(values) < 0 else 0.0
        width = (max(1.0, np.nanmax(values)) - low) / len(counts)
        for index in indices:
            assert low + fullest * width - 1e-9 <= values[index] <= low + (fullest + 1) * width
        # the bin's images open their page
        listed.first.click()
        page.wait_for_selector("[data-testid=image-view][data-ready=true]")
        assert page.evaluate("location.hash") == f"#image/{indices[0]}"
        page.go_back()
        page.get_by_test_id("overview").wait_for(state="visible")

        rows = page.get_by_test_id("disagree-row")
        shown = [int(i) for i in rows.evaluate_all("r => r.map(x => x.dataset.image)")]
        finite = np.flatnonzero(np.isfinite(values))
        lowest = finite[np.lexsort((finite, values[finite]))][: len(shown)].tolist()
        assert shown == lowest and len(shown) >= 10
        rows.first.locator("canvas").scroll_into_view_if_needed()
        page.wait_for_function(
            "() => document.querySelector('[data-testid=disagree-row] canvas').dataset.ready"
        )
        assert rows.first.locator("canvas").evaluate(DRAWN)
        watch.assert_clean()
    finally:
        watch.page.close()


def test_the_image_page_overlays_either_map_on_the_image(browser: Any, report_file: Path) -> None:
    watch = PageWatch(browser, report_file)
    page = watch.open("#image/3")
    try:
        page.wait_for_selector("[data-testid=image-view][data-ready=true]")
        overlay = page.get_by_test_id("drill-overlay")
        assert overlay.get_attribute("data-side") == "a"
        assert overlay.evaluate(DRAWN)
        seen = {"a": overlay.evaluate(DIGEST)}
        for side in ("b", "diff"):
            page.get_by_test_id(f"overlay-{side}").check()
            page.wait_for_selector(f"[data-testid=drill-overlay][data-side={side}]")
            seen[side] = overlay.evaluate(DIGEST)
        assert len(set(seen.values())) == 3  # three different pictures
        # opacity 0 shows the image alone, whichever map is chosen
        page.get_by_test_id("overlay-opacity").fill("0")
        page.wait_for_selector("[data-testid=drill-overlay][data-opacity='0']")
        bare = overlay.evaluate(DIGEST)
        page.get_by_test_id("overlay-a").check()
        page.wait_for_selector("[data-testid=drill-overlay][data-side=a]")
        assert overlay.evaluate(DIGEST) == bare
        # the choice stays when the reader moves to another image
        page.get_by_test_id("overlay-opacity").fill("100")
        page.evaluate("location.hash = '#image/4'")
        page.wait_for_selector("[data-testid=image-view][data-ready=true]")
        assert overlay.get_attribute("data-opacity") == "100"
        watch.assert_clean()
    finally:
        watch.page.close()


def test_hostile_file_names_are_searched_and_listed_as_text(
    browser: Any, hostile_report: Path, hostile: Any
) -> None:
    watch = PageWatch(browser, hostile_report)
    page = watch.open()
    try:
        page.get_by_test_id("search").fill("onerror")
        hits = page.get_by_test_id("search-hit")
        assert hits.count() == 12  # the odd ones of 24
        assert hits.first.inner_text() == hostile.file_name(1)
        page.locator("[data-testid=hist-bin][data-count]:not([data-count='0'])").first.click()
        assert page.get_by_test_id("bin-image").count() >= 1
        assert page.locator("img").count() == 0
        watch.assert_clean()
    finally:
        watch.page.close()


@pytest.mark.torch
def test_the_quality_panels_open_with_a_verdict_per_model(
    browser: Any, quality_comparison: Any, tmp_path: Path
) -> None:
    from imacs.report.html import write_report

    report = write_report(quality_comparison, tmp_path / "report.html", progress=False)
    watch = PageWatch(browser, report)
    page = watch.open()
    try:
        page.locator("nav a[href='#quality']").click()
        section = page.get_by_test_id("quality")
        assert section.is_visible()
        assert "Can these maps be trusted?" in section.inner_text()
        panels = section.get_by_test_id("quality-model")
        assert panels.count() == 2
        for k in range(2):
            panel = panels.nth(k)
            assert panel.get_by_test_id("quality-verdict").get_attribute("data-verdict") == "fail"
            sanity = panel.get_by_test_id("quality-sanity").inner_text()
            assert "1.00 before randomisation" in sanity
            rows = panel.locator("[data-testid=quality-table] tbody tr")
            assert rows.count() == 2 and "lower is better" in rows.first.inner_text()
        assert page.locator("[data-code=sanity-check]").is_visible()
        watch.assert_clean()
    finally:
        watch.page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Save a screenshot of an imacs report.")
    parser.add_argument("report", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--route", default="", help='e.g. "#cluster/3" or "#image/0"')
    parser.add_argument("--viewport", action="store_true", help="only the first screen")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        try:
            save_screenshot(
                launched, args.report, args.out, route=args.route, full_page=not args.viewport
            )
        finally:
            launched.close()
    print(args.out)


if __name__ == "__main__":
    main()
