"""Where the attribution stage runs: an executor maps a function over tasks.

The runner splits the images still missing from the store into tasks and hands them to an
executor; it stores each result as it comes back, so a run that stops keeps every finished
task. The default executor runs tasks one after another in this process. Another engine
(a process pool, Ray, Dask) only has to implement :meth:`Executor.map`: the stages do not
change. Such an engine must ship the function and its adapters to its workers, so it
needs adapters that can be pickled or rebuilt there.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(abc.ABC):
    """Runs ``function`` on every task and yields ``(task, result)`` pairs as they finish."""

    @abc.abstractmethod
    def map(self, function: Callable[[T], R], tasks: Iterable[T]) -> Iterator[tuple[T, R]]:
        """Yield each task with its result, in any order, as soon as each is done."""


class InProcessExecutor(Executor):
    """Runs the tasks in order, in this process: the default."""

    def map(self, function: Callable[[T], R], tasks: Iterable[T]) -> Iterator[tuple[T, R]]:
        for task in tasks:
            yield task, function(task)
