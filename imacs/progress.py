"""Progress of long stages, always on standard error, never on standard output.

On a terminal (or in Jupyter) each stage is a live bar. Anywhere else, a CI log or a file
that stderr is redirected to, a bar would be one unreadable line of control codes, so each
stage writes plain lines instead: one when it starts, one per tenth of the work (or every
:data:`LINE_INTERVAL` seconds when a tenth takes longer), one when it ends. A stage whose
results were all found in the store says ``reused`` instead of counting to 0/0.

Standard output is kept for results (tables, paths), so ``imacs compare ... > out.txt``
or ``$(imacs compare --quiet ...)`` read the result alone.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

#: the longest a running stage stays silent in plain-line mode, in seconds
LINE_INTERVAL = 30.0
#: plain-line mode reports each stage at this many equal steps of its work
LINE_STEPS = 10


def stderr_is_interactive() -> bool:
    """Whether standard error shows live bars: a terminal, or a Jupyter notebook."""
    from rich.console import Console

    console = Console(stderr=True)
    return console.is_terminal or console.is_jupyter


class Progress:
    """Progress of the stages of one run, or nothing (``enabled=False``).

    ``running()`` holds the display while the stages run; ``stage(description, total)``
    yields the function that advances a stage by ``n``. ``interactive`` chooses live bars
    (``True``) or plain lines (``False``); by default, live bars when standard error is a
    terminal. ``transient`` bars vanish when the run ends.
    """

    def __init__(self, enabled: bool, *, transient: bool = False, interactive: bool | None = None):
        self.enabled = enabled
        self.transient = transient
        self.interactive = interactive
        self._bars: Any = None
        self._lines: _Lines | None = None

    @contextmanager
    def running(self) -> Iterator[Progress]:
        if not self.enabled:
            yield self
            return
        interactive = stderr_is_interactive() if self.interactive is None else self.interactive
        if not interactive:
            self._lines = _Lines()
            try:
                yield self
            finally:
                self._lines = None
            return
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        columns = (
            TextColumn("{task.description:<24}"),
            BarColumn(),
            _count_column(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        console = Console(stderr=True)
        with RichProgress(*columns, transient=self.transient, console=console) as bars:
            self._bars = bars
            try:
                yield self
            finally:
                self._bars = None

    @contextmanager
    def stage(
        self, description: str, total: int | None, *, reused: int = 0
    ) -> Iterator[Callable[[int], None]]:
        """Show a stage of ``total`` steps; ``reused`` more were found in the store.

        A stage with nothing left to do and something reused shows ``reused``.
        """
        if reused and total == 0:
            self.reused(description)
            yield lambda n: None
            return
        if reused:
            description = f"{description}, {reused} reused"
        if self._lines is not None:
            lines = self._lines
            lines.start(description, total)
            yield lines.advance
            lines.finish()
            return
        if self._bars is None:
            yield lambda n: None
            return
        bars = self._bars
        task = bars.add_task(description, total=total)
        yield lambda n: bars.advance(task, n)
        if total is not None:
            bars.update(task, completed=total)

    def reused(self, description: str) -> None:
        """Show a stage whose every result was found in the store."""
        if self._lines is not None:
            self._lines.write(f"{description}: reused from the store")
        elif self._bars is not None:
            self._bars.add_task(description, total=1, completed=1, reused=True)


def _count_column() -> Any:
    """A column of ``done/total``, or ``reused`` for a stage found in the store."""
    # rich is imported only when bars are shown, so the column's class is made then
    from rich.progress import ProgressColumn
    from rich.text import Text

    class CountColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            if task.fields.get("reused"):
                return Text("reused", style="progress.download")
            total = "?" if task.total is None else f"{task.total:.0f}"
            return Text(f"{task.completed:.0f}/{total}", style="progress.download")

    return CountColumn()


class _Lines:
    """Plain progress lines on standard error, one stage at a time."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream
        self.description = ""
        self.total: int | None = None
        self.done = 0
        self.started = self.last = 0.0
        self.step = 0

    def write(self, line: str) -> None:
        stream = self.stream or sys.stderr  # looked up late: tests and notebooks swap it
        print(line, file=stream, flush=True)

    def start(self, description: str, total: int | None) -> None:
        self.description, self.total, self.done, self.step = description, total, 0, 0
        self.started = self.last = time.monotonic()
        self.write(f"{description}: started" + ("" if total is None else f", 0/{total}"))

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        step = self.step
        if self.total:
            step = min(LINE_STEPS, self.done * LINE_STEPS // self.total)
        if (step > self.step and self.done < (self.total or 0)) or now - self.last >= LINE_INTERVAL:
            self.step = step
            self.last = now
            self.write(f"{self.description}: {self._count()}, {now - self.started:.0f}s")

    def finish(self) -> None:
        seconds = time.monotonic() - self.started
        self.write(f"{self.description}: done, {self._count()} in {seconds:.1f}s")

    def _count(self) -> str:
        if not self.total:
            return f"{self.done}"
        return f"{self.done}/{self.total} ({100 * self.done // self.total}%)"
