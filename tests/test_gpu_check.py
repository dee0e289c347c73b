"""The GPU check script runs end to end, here on the CPU, so it is ready when a GPU is.

It compares every PyTorch method's maps on the device with the CPU's, so on the CPU it
must find them equal; a method it cannot run is a failure it reports, which fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_the_gpu_check_runs_on_the_cpu_and_passes(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--device", "cpu", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check-quick.json").read_text())
    assert report["failed"] == []
    assert report["parts"]["adapter"]["ok"]
    for name in ("integrated-gradients", "guided-ig", "blur-ig", "grad-cam", "iia3", "xrai"):
        float32 = report["methods"][name]["result"]["float32"]
        assert float32["difference_over_largest"] == 0.0, (name, float32)


def test_without_a_gpu_it_says_what_it_needs() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cuda"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "sees no CUDA device" in done.stderr
