"""The report's "Can these maps be trusted?" panels and the notebook's line on them."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from imacs.report.html import write_report
from imacs.report.notebook import summary_html
from imacs.report.quality import quality_view, verdict


def test_each_model_gets_a_panel_with_its_measures_and_a_verdict(quality_comparison: Any) -> None:
    view = quality_view(quality_comparison)
    assert view is not None and view["method"] == "gradient-times-input"
    assert [(m["side"], m["name"]) for m in view["models"]] == [("A", "first"), ("B", "second")]
    for model in view["models"]:
        assert [m["measure"] for m in model["measures"]] == ["deletion", "model-randomisation"]
        assert all(m["better"] == "lower" for m in model["measures"])
        assert model["measures"][0]["meaning"].startswith("Deletion AUC")
        assert float(model["measures"][0]["ci_low"]) <= float(model["measures"][0]["mean"])
        assert model["verdict"] == "fail" and "Fails the sanity check" in model["sentence"]
        assert float(model["sanity"]["after"]) > 0.3


def test_the_verdict_reads_the_alerts_rows_and_says_when_there_is_none() -> None:
    rows = [{"measure": "model-randomisation", "mode": "cascading", "similarity": "ssim",
             "mean": 0.9}, {"measure": "deletion", "mean": 0.1}]  # fmt: skip
    assert verdict(rows)[0] == "none"
    rows.append({"measure": "model-randomisation", "mode": None, "similarity": None, "mean": 0.1})
    kind, sentence = verdict(rows)
    assert kind == "pass" and "0.10" in sentence


def test_the_report_shows_the_section_only_when_quality_ran(
    quality_comparison: Any, tmp_path: Path
) -> None:
    html = write_report(quality_comparison, tmp_path / "with.html", progress=False).read_text()
    assert 'data-testid="quality"' in html and "Can these maps be trusted?" in html
    assert html.count('data-testid="quality-model"') == 2
    assert 'href="#quality"' in html
    without = dataclasses.replace(quality_comparison, quality=None)
    html = write_report(without, tmp_path / "without.html", progress=False).read_text()
    assert 'data-testid="quality"' not in html and 'href="#quality"' not in html


def test_the_notebook_summary_has_a_line_on_the_sanity_check(quality_comparison: Any) -> None:
    html = summary_html(quality_comparison)
    assert "Can these maps be trusted?" in html and "A first fails" in html
    assert "Can these maps be trusted?" not in summary_html(
        dataclasses.replace(quality_comparison, quality=None)
    )
