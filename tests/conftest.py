"""Shared fixtures: throwaway plugin distributions, and one run of ``imacs demo``."""

from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from imacs import plugins

pytest_plugins = ["imacs.testing.pytest_plugin"]

InstallPlugin = Callable[..., Path]


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InstallPlugin]:
    """Install a throwaway plugin distribution: a module plus a dist-info on sys.path.

    ``install_plugin(dist, module_source, entry_point=None)`` writes ``<module>.py`` and
    ``<dist>-0.1.dist-info`` declaring ``[imacs] <entry_point> = <module>`` into a
    temporary folder on ``sys.path``, exactly what ``pip install`` leaves behind, so
    imacs finds it through ``importlib.metadata``. Everything is removed afterwards.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules: list[str] = []

    def install(dist: str, source: str, entry_point: str | None = None) -> Path:
        module = dist.replace("-", "_")
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{module}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[imacs]\n{entry_point or dist} = {module}\n")
        modules.append(module)
        # a module of that name imported earlier (by another test) would shadow this one
        sys.modules.pop(module, None)
        importlib.invalidate_caches()
        plugins.reset()
        return site

    yield install
    for module in modules:
        sys.modules.pop(module, None)
    plugins.reset()


def _skipped(config: pytest.Config) -> list[pytest.TestReport]:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    return list(reporter.stats.get("skipped", [])) if reporter is not None else []


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    if os.environ.get("CI") and _skipped(config):
        terminalreporter.write_line(
            "CI installs every test dependency, so a skipped test means a check did not run: "
            "failing the session.",
            red=True,
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # in CI a skip can only mean a missing dependency hiding a feature's test
    if os.environ.get("CI") and _skipped(session.config) and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def run_demo_cli(out: Path) -> subprocess.CompletedProcess[str]:
    """``imacs demo --out out`` in a fresh interpreter: what ``make demo`` runs."""
    return subprocess.run(
        [sys.executable, "-m", "imacs.cli", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="session")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The demo's output folder and its process, run once for every test that reads it."""
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    out = tmp_path_factory.mktemp("demo") / "imacs-demo"
    return out, run_demo_cli(out)


@contextlib.contextmanager
def _small_disk(size: str) -> Iterator[Path]:
    """A fresh tmpfs of ``size`` to fill up or remount read-only; unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs the tests as root)")
    folder = Path(tempfile.mkdtemp(prefix="imacs-small-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"mount -t tmpfs is not permitted here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)
        folder.rmdir()


@pytest.fixture
def small_disk() -> Callable[[str], contextlib.AbstractContextManager[Path]]:
    """``small_disk("64k")``: a context manager for a tmpfs of that size (skips without root)."""
    return _small_disk
