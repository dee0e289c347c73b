"""``imacs demo``: a PyTorch and a Keras network, one taught a shortcut, compared end to end.

Both networks are the same small CNN (:mod:`imacs.demo.models`) trained the same way on
the same scikit-learn digits (:mod:`imacs.demo.data`). Model A, in PyTorch, sees digits
whose corner patch has a random shade. Model B, in Keras, sees digits whose patch shade
gives the label away, and learns to read the corner. The comparison must find that
corner: its top cluster is the patch, attributed by B far more than by A.

Everything runs on a laptop CPU in about a minute, including importing both frameworks.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import imacs
from imacs.errors import ImacsError
from imacs.parameters import check_positive_int, check_seed

if TYPE_CHECKING:
    from rich.console import Console

    from imacs.adapters.base import ModelAdapter
    from imacs.comparison.result import Comparison
    from imacs.demo.data import ShortcutDigits

#: epochs of both networks; A needs them to reach about 90% on the digits
EPOCHS = 15
#: held-out digits compared (the whole test split)
N_TEST = 400
#: integrated-gradients steps: enough for the planted patch to stand out, and fast
N_STEPS = 16
CLASS_NAMES = [str(k) for k in range(10)]
NAME_A, NAME_B = "clean-torch", "shortcut-keras"

#: adapter -> (the modules the demo imports for it, framework, the install that gives both)
FRAMEWORKS = {
    "torch": (("torch",), "PyTorch", "pip install imacs-torch"),
    "tensorflow": (("tensorflow", "keras"), "TensorFlow", 'pip install "imacs-tensorflow[cpu]"'),
}


class MissingFrameworkError(ImacsError, RuntimeError):
    """The demo needs PyTorch and TensorFlow with their imacs plugins."""


def check_frameworks() -> None:
    """Raise :class:`MissingFrameworkError` naming what to install if a plugin is missing.

    Looks up the registered adapters and the framework modules without importing them.
    """
    from imacs.plugins import get_host

    adapters = get_host().registry.names("model_adapter")
    missing = [
        (framework, install)
        for adapter, (modules, framework, install) in FRAMEWORKS.items()
        if adapter not in adapters
        or any(importlib.util.find_spec(module) is None for module in modules)
    ]
    if missing:
        names = " and ".join(framework for framework, _ in missing)
        installs = " and ".join(install for _, install in missing)
        raise MissingFrameworkError(
            f"imacs demo trains a PyTorch and a Keras model, but {names} with its imacs "
            f"plugin is not installed: run {installs} (in a clone of imacs, `make demo` "
            "installs everything and runs the demo)"
        )


def run_demo(
    out: Path,
    *,
    store: Path | None = None,
    progress: bool = True,
    seed: int = 0,
    epochs: int = EPOCHS,
    n_test: int = N_TEST,
    n_steps: int = N_STEPS,
) -> Comparison:
    """Train the two demo networks, compare them and write everything into ``out``.

    Model A ("clean-torch", PyTorch) is trained on the training digits with random patch
    shades, model B ("shortcut-keras", Keras) on the same digits with the label in the
    patch shade. They are compared on ``n_test`` held-out digits whose patch shade is
    random, as on data where the shortcut no longer holds: B's accuracy falls there,
    and the comparison shows why, with the patch as its top cluster, B - A > 0. Test
    digits that kept the shortcut would show the same attributions but hide what the
    shortcut costs, as B would score there better than A.

    Parameters
    ----------
    out:
        Folder for the tables, ``comparison.json`` and the report.
    store:
        Where attributions and segments are kept; ``out / "store"`` by default, so the
        demo is self-contained. Training is deterministic, so a rerun with the same seed
        trains the same networks and reuses the stored attributions.
    progress:
        Print a line per step and the comparison's progress bars (on standard error).
    seed:
        Seeds the data's colours and shades, both networks and the comparison.
    epochs, n_test, n_steps:
        Training epochs of both networks, held-out digits compared, and the integrated
        gradients steps.

    Returns the :class:`~imacs.comparison.result.Comparison`, also saved in ``out``.
    """
    check_seed(seed)
    check_positive_int(epochs, "epochs")
    check_positive_int(n_test, "n_test")
    check_positive_int(n_steps, "n_steps")
    check_frameworks()
    from rich.console import Console

    out = Path(out)
    # absolute, so that comparison.json finds the store from any working directory
    store = (out / "store").absolute() if store is None else Path(store)
    steps = _Steps(Console(stderr=True) if progress else None)

    with steps.step("Importing PyTorch and TensorFlow") as step:
        # TensorFlow logs its CPU features at import; keep the demo's output readable
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras
        import torch

        step.done(f"Imported PyTorch {torch.__version__} and Keras {keras.__version__}")

    with _single_threaded_torch():
        model_a, model_b, held_out = _train(steps, seed=seed, epochs=epochs, n_test=n_test)
        steps.say(
            f"Comparing A and B on {len(held_out.labels)} test digits with random patch "
            f"shades (integrated gradients, {n_steps} steps)"
        )
        comparison = imacs.compare(
            model_a,
            model_b,
            held_out.images,
            held_out.labels,
            class_names=CLASS_NAMES,
            method="integrated-gradients",
            method_params={"n_steps": n_steps},
            seed=seed,
            store=store,
            progress=progress,
        )
    comparison.models["a"].update(training_data="digits, random patch shade")
    comparison.models["b"].update(training_data="digits, patch shade = label")

    # saving shows its own progress bar while the report encodes the images
    with steps.step("Writing the tables and the report", spinner=False) as step:
        comparison.save(out, progress=progress)
        step.done(f"Wrote the tables and the report to {out}")
    return comparison


def _train(
    steps: _Steps, *, seed: int, epochs: int, n_test: int
) -> tuple[ModelAdapter, ModelAdapter, ShortcutDigits]:
    """Model A and model B as adapters, and the held-out digits with random shades."""
    from imacs.demo.data import PATCH, SIZE, shortcut_digits, split_indices
    from imacs.demo.models import train_keras_cnn, train_torch_cnn

    with steps.step("Building the digits") as step:
        train, test = split_indices()
        test = test[:n_test]
        clean = shortcut_digits(train, shortcut=False, seed=seed)
        shortcut = shortcut_digits(train, shortcut=True, seed=seed)
        held_out = shortcut_digits(test, shortcut=False, seed=1000 + seed)
        held_out_shortcut = shortcut_digits(test, shortcut=True, seed=1000 + seed)
        step.done(
            f"Built {len(train)} training and {len(test)} test digits ({SIZE}x{SIZE} RGB, "
            f"a {PATCH}x{PATCH} patch in the top-left corner)"
        )

    with steps.step(f"Training A, {NAME_A} (PyTorch CNN)", epochs) as step:
        model_a = imacs.load_model(
            train_torch_cnn(
                clean.images, clean.labels, seed=seed, epochs=epochs, on_epoch=step.advance
            ),
            name=NAME_A,
        )
        step.done(
            f"Trained A, {NAME_A}: {epochs} epochs on digits with random patch shades; "
            f"test accuracy {_accuracy(model_a, held_out):.0%}"
        )

    with steps.step(f"Training B, {NAME_B} (Keras CNN)", epochs) as step:
        model_b = imacs.load_model(
            train_keras_cnn(
                shortcut.images, shortcut.labels, seed=seed, epochs=epochs, on_epoch=step.advance
            ),
            name=NAME_B,
        )
        step.done(
            f"Trained B, {NAME_B}: {epochs} epochs on digits whose patch shade is the label; "
            f"test accuracy {_accuracy(model_b, held_out):.0%} "
            f"({_accuracy(model_b, held_out_shortcut):.0%} if the patch still gave it away)"
        )
    return model_a, model_b, held_out


def _accuracy(model: ModelAdapter, data: ShortcutDigits) -> float:
    return float(np.mean(model.predict(data.images).argmax(axis=1) == data.labels))


@contextmanager
def _single_threaded_torch() -> Iterator[None]:
    # The networks are tiny: a second thread saves little, and on a busy machine
    # PyTorch's threads spin (training measured 8x slower with two threads on two cores)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _Step:
    """A running step: ``advance(n)`` moves its epoch bar, ``done(line)`` sets its last line."""

    def __init__(self, title: str):
        self.line = title
        self.advance: Callable[[int], None] = lambda _done: None

    def done(self, line: str) -> None:
        self.line = line


class _Steps:
    """One line per finished step, with a spinner or an epoch bar while it runs."""

    def __init__(self, console: Console | None):
        self.console = console

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(f"[bold]{text}[/bold]", soft_wrap=True)

    @contextmanager
    def step(
        self, title: str, epochs: int | None = None, *, spinner: bool = True
    ) -> Iterator[_Step]:
        """Run a step; a spinner (or a bar of ``epochs``) shows in a terminal while it runs."""
        current = _Step(title)
        started = time.perf_counter()
        if self.console is None:
            yield current
            return
        if not (spinner and self.console.is_terminal):  # a log gets the finished lines only
            yield current
        else:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
            if epochs is not None:
                columns += [BarColumn(), MofNCompleteColumn(), TextColumn("epochs")]
            columns.append(TimeElapsedColumn())
            with Progress(*columns, console=self.console, transient=True) as bar:
                task = bar.add_task(title, total=epochs)
                current.advance = lambda done: bar.update(task, completed=done)
                yield current
        seconds = time.perf_counter() - started
        self.console.print(
            f"[green]✓[/green] {current.line} [dim]({seconds:.1f} s)[/dim]", soft_wrap=True
        )
