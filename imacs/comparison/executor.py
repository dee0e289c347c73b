"""Where a comparison's per-task stages run: an executor maps a function over tasks.

The runner splits its work into tasks of image indices: the attribution stage a task of
:data:`~imacs.comparison.runner.TASK_SIZE` images still missing from the store per model,
the per-image stages (segment, score, featurize) one task per batch of images. It hands
the tasks with a work object (:mod:`imacs.comparison.tasks`) to an executor and takes
each result as it comes back: the attribution stage stores it at once, so a run that
stops keeps every finished task; the per-image results are put back in task order, so
the tables do not depend on which task finished first.

The default executor runs the tasks one after another in this process. Another engine (a
process pool, Ray, Dask) implements :meth:`Executor.map` and registers itself through
the ``register_executors`` hook; users pick it by name, ``imacs.compare(...,
executor="ray")``. Such an engine pickles the work object once per worker: the work
holds its models as :class:`~imacs.adapters.recipe.PortableModel` handles, which travel as
what loads them (a file, or a state dict and a factory) and are loaded once per worker,
never as the framework model itself.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, ClassVar, TypeVar

from imacs.hookspecs import Register, hookimpl

if TYPE_CHECKING:
    from imacs.adapters.base import ModelAdapter
    from imacs.store import Store

T = TypeVar("T")
R = TypeVar("R")


class Executor(abc.ABC):
    """Runs ``function`` on every task and yields ``(task, result)`` pairs as they finish.

    Subclasses take their options as keyword parameters of the constructor (stored as
    given) and are registered under their ``name``.
    """

    #: The name users pick the executor by (``executor="ray"``).
    name: ClassVar[str] = ""

    @classmethod
    def param_names(cls) -> list[str]:
        """The keyword parameters the constructor accepts."""
        return [
            p.name
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]

    def check_models(self, models: Mapping[str, ModelAdapter]) -> None:
        """Raise a clear error now, before hours of work, if ``models`` cannot run here.

        Called once per comparison with its adapters by side (``"a"``, ``"b"``). An
        executor that runs tasks in other processes checks that each model has a recipe
        (:meth:`imacs.ModelAdapter.recipe`); the in-process executor runs anything.
        """
        return None

    def check_store(self, store: Store) -> None:
        """Raise a clear error now if the tasks could not share ``store`` where they run.

        An executor that runs tasks in other processes refuses a store only this process
        can reach (``memory://``); the in-process executor takes any.
        """
        return None

    @abc.abstractmethod
    def map(self, function: Callable[[T], R], tasks: Iterable[T]) -> Iterator[tuple[T, R]]:
        """Yield each task with its result, in any order, as soon as each is done.

        ``function`` is called once per task. An executor that runs it in other
        processes must ship it there (it pickles, with its models as recipes) and must
        raise the function's exceptions here.
        """


class InProcessExecutor(Executor):
    """Runs the tasks in order, in this process: the default."""

    name = "in-process"

    def map(self, function: Callable[[T], R], tasks: Iterable[T]) -> Iterator[tuple[T, R]]:
        for task in tasks:
            yield task, function(task)


@hookimpl
def register_executors(register: Register) -> None:
    """The built-in executor: ``in-process``."""
    register(InProcessExecutor)
