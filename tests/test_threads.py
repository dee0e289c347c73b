"""imacs.set_threads and IMACS_THREADS: thread pools set before and after the frameworks load."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import imacs
from imacs.errors import InvalidInputError
from imacs.threads import threads_from_environment


def run(code: str, **env: str) -> dict:
    """``code`` in a fresh interpreter (no framework loaded yet); its last line as JSON."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "KMP_"))}
    environment.pop("IMACS_THREADS", None)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**environment, **env},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_before_torch_loads_the_settings_go_to_the_environment_torch_reads() -> None:
    pytest.importorskip("torch")
    result = run(
        "import json, os, imacs\n"
        "done = imacs.set_threads(1)\n"
        "import torch\n"
        "print(json.dumps({'done': done, 'threads': torch.get_num_threads(),"
        " 'policy': os.environ['OMP_WAIT_POLICY'], 'tf': os.environ['TF_NUM_INTRAOP_THREADS']}))"
    )
    assert result["done"] == {
        "wait_policy": "environment",
        "torch": "environment",
        "tensorflow": "environment",
    }
    assert result["threads"] == 1 and result["policy"] == "PASSIVE" and result["tf"] == "1"


def test_after_torch_loads_the_count_is_set_and_the_wait_policy_is_reported_as_too_late() -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        done = imacs.set_threads(1)
        assert done["torch"] == "set" and torch.get_num_threads() == 1
        assert "already imported" in done["wait_policy"]
    finally:
        torch.set_num_threads(before)


def test_the_environment_variable_is_applied_at_import() -> None:
    pytest.importorskip("torch")
    result = run(
        "import json, os, imacs, torch\n"
        "print(json.dumps({'threads': torch.get_num_threads(),"
        " 'policy': os.environ.get('OMP_WAIT_POLICY')}))",
        IMACS_THREADS="1",
    )
    assert result == {"threads": 1, "policy": "PASSIVE"}
    assert (
        run(
            "import json, os, imacs\nprint(json.dumps(os.environ.get('OMP_NUM_THREADS')))",
            IMACS_THREADS="passive",
        )
        is None
    )


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_bad_thread_counts_are_refused(threads: object) -> None:
    with pytest.raises(InvalidInputError, match="threads"):
        imacs.set_threads(threads)  # type: ignore[arg-type]


def test_a_bad_environment_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMACS_THREADS", "many")
    with pytest.raises(InvalidInputError, match="IMACS_THREADS"):
        threads_from_environment()
    monkeypatch.delenv("IMACS_THREADS")
    assert threads_from_environment() is None


def test_a_bad_environment_value_warns_at_import_and_changes_nothing() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import os, imacs; print(os.environ.get('OMP_WAIT_POLICY'))"],
        capture_output=True,
        text=True,
        check=True,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("OMP_")},
            "IMACS_THREADS": "many",
        },
    )
    assert "IMACS_THREADS ignored" in out.stderr
    assert out.stdout.strip() == "None"
