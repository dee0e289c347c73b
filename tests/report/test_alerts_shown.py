"""A comparison's alerts reach the user: top of the report, the notebook summary, stderr."""

from __future__ import annotations

import dataclasses
import json
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from markupsafe import escape as markup_escape
from PIL import Image

import imacs
from imacs.cli import cli
from imacs.cli_terms import in_cli_terms
from imacs.comparison.alerts import Alert
from imacs.demo.data import shortcut_digits, split_indices
from imacs.report.html import write_report
from imacs.report.notebook import summary_html
from imacs.testing.planted import planted_models


@pytest.fixture(scope="module")
def script(hostile: Any) -> str:
    return str(hostile.script)


@pytest.fixture(scope="module")
def alarmed(report_comparison: Any, script: str) -> Any:
    """The report comparison with a warning and an error whose messages are hostile HTML."""
    return dataclasses.replace(
        report_comparison,
        alerts=[
            Alert("few-images", "warning", f"few images {script}"),
            Alert("input-range", "error", f'pixels & "range" {script}'),
        ],
    )


def test_the_report_opens_with_the_alerts_errors_first_and_escaped(
    alarmed: Any, script: str, tmp_path: Path
) -> None:
    html = write_report(alarmed, tmp_path / "report.html", progress=False).read_text()
    assert script not in html
    # jinja2 escapes through markupsafe
    error = html.index(str(markup_escape(f'pixels & "range" {script}')))
    warning = html.index(str(markup_escape(f"few images {script}")))
    alerts = html.index('data-testid="alerts"')
    body = html.index("<body>")
    # nothing but the page header comes before them; errors come before warnings
    assert body < html.index("</header>") < alerts < error < warning < html.index("<nav")
    assert 'class="alert alert-error"' in html and 'data-code="few-images"' in html


def test_a_report_without_alerts_has_no_alert_section(
    report_comparison: Any, tmp_path: Path
) -> None:
    assert report_comparison.alerts == []
    html = write_report(report_comparison, tmp_path / "report.html", progress=False).read_text()
    assert 'data-testid="alerts"' not in html


def test_the_notebook_summary_opens_with_the_alerts(alarmed: Any, script: str) -> None:
    html = summary_html(alarmed)
    assert script not in html
    error = html.index(escape(f'pixels & "range" {script}'))
    warning = html.index(escape(f"few images {script}"))
    assert error < warning < html.index("<table")
    assert "imacs-alert" not in summary_html(dataclasses.replace(alarmed, alerts=[]))


def test_imacs_compare_prints_the_alerts_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, test = split_indices()
    data = shortcut_digits(test[:12], shortcut=False, seed=3)
    for i, (image, label) in enumerate(zip(data.images, data.labels, strict=True)):
        folder = tmp_path / "images" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(folder / f"{i}.png")
    models = iter(planted_models())
    monkeypatch.setattr(imacs, "load_model", lambda path, **options: next(models))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        [
            "compare",
            "--model-a",
            "a",
            "--model-b",
            "b",
            "--data",
            str(tmp_path / "images"),
            "--out",
            str(out),
            "--store",
            str(tmp_path / "store"),
            "--method-option",
            "n_steps=4",
            "--no-report",
            "--no-figures",
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    saved = json.loads((out / "comparison.json").read_text())["alerts"]
    assert "few-images" in {a["code"] for a in saved}  # twelve images
    for found in saved:
        # the saved message in the library's words, printed in the CLI's
        line = in_cli_terms(f"{found['severity']} [{found['code']}]: {found['message']}", "compare")
        assert line in result.stderr
        assert line not in result.stdout
    assert result.stderr.rstrip().endswith(line)
