"""A comparison killed mid-attribution resumes without redoing finished work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import imacs
from imacs.demo.data import shortcut_digits, split_indices
from imacs.store import Store
from imacs.testing.planted import planted_models

N_IMAGES = 64
N_STEPS = 8
SETTINGS = {"method_params": {"n_steps": N_STEPS}, "n_permutations": 200, "progress": False}

SCRIPT = """
import sys
import imacs
from imacs.demo.data import shortcut_digits, split_indices
from imacs.testing.planted import planted_models

_, test = split_indices()
data = shortcut_digits(test[:{n}], shortcut=False, seed=3)
model_a, model_b = planted_models(delay=0.05)
print("started", flush=True)
imacs.compare(model_a, model_b, data.images, data.labels, store=sys.argv[1], **{settings})
"""


def counting(model: Any) -> list[int]:
    """Count the images sent to ``model``'s gradient function from now on."""
    calls: list[int] = []
    inner = model.gradient_fn

    def gradient(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        calls.append(len(images))
        return np.asarray(inner(images, targets))

    model.gradient_fn = gradient
    return calls


def test_a_killed_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    store_path = tmp_path / "store"
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(SCRIPT.format(n=N_IMAGES, settings=SETTINGS)))
    process = subprocess.Popen(
        [sys.executable, str(script), str(store_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if (store_path / "attributions").is_dir() and Store(store_path).count(
                "attributions"
            ) >= 32:
                break
            time.sleep(0.02)
        assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    finished = Store(store_path).count("attributions")
    assert 32 <= finished < 2 * N_IMAGES, "the kill should land mid-attribution"

    _, test = split_indices()
    data = shortcut_digits(test[:N_IMAGES], shortcut=False, seed=3)
    model_a, model_b = planted_models()
    calls_a, calls_b = counting(model_a), counting(model_b)
    resumed = imacs.compare(
        model_a, model_b, data.images, data.labels, store=store_path, **SETTINGS
    )
    redone = resumed.work["attributed_a"] + resumed.work["attributed_b"]
    assert redone == 2 * N_IMAGES - finished
    assert sum(calls_a) + sum(calls_b) == N_STEPS * redone

    fresh_a, fresh_b = planted_models()
    whole = imacs.compare(
        fresh_a, fresh_b, data.images, data.labels, store=tmp_path / "fresh", **SETTINGS
    )
    for name in ("clusters", "regions", "images", "classes"):
        pd.testing.assert_frame_equal(getattr(resumed, name), getattr(whole, name))
