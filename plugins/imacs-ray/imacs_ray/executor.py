"""The ``ray`` executor: a comparison's tasks on a pool of Ray actors.

How it runs a stage (one :meth:`RayExecutor.map` call: one model's attribution, or the
per-image stages):

1. the work object (:mod:`imacs.comparison.tasks`) is pickled once with the standard
   :mod:`pickle`, which refuses closures and lambdas; its models pickle as their recipes
   (:class:`~imacs.adapters.recipe.PortableModel`), and a model without one fails here,
   before anything runs, saying what to pass instead. The bytes go into Ray's object
   store once;
2. a pool of actors (one per ``num_cpus`` of the cluster's CPUs, unless ``workers``
   says) is started on the first stage and kept, shared by every ``RayExecutor`` of
   this process with the same resources, until Ray shuts down: the next stages and
   comparisons reuse its processes and their imports. An actor unpickles a stage's work
   with its first task and keeps it until the next stage's, so it loads each model once
   per stage;
3. every actor gets up to ``tasks_per_worker`` tasks at a time (the next one waits in
   its queue while the current one runs), and results come back to the driver as they
   finish; the runner stores them, so a run stopped midway keeps every finished task.

Faults: actors are created with ``max_restarts`` and ``max_task_retries``. When a
worker process dies in the middle of a task (killed, out of memory, its node lost), Ray
starts the actor again and runs its unfinished tasks again; the run loses those tasks'
time, not their results, and ends with the same tables. An error raised by imacs or a
component inside a task is not retried: it is raised in the driver as itself.
"""

from __future__ import annotations

import os
import pickle
import socket
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import ray

from imacs.adapters.base import ModelAdapter
from imacs.adapters.recipe import PortableModel
from imacs.comparison.executor import Executor
from imacs.errors import ImacsError, InvalidInputError
from imacs.store import Store

T = TypeVar("T")
R = TypeVar("R")


#: the actor pools of this process, by resources: (Ray job id, actors)
_POOLS: dict[tuple[Any, ...], tuple[str, list[Any]]] = {}
#: seconds a cluster's address has to accept a connection before it counts as unreachable
CONNECT_TIMEOUT = 10.0


class RayExecutorError(ImacsError, RuntimeError):
    """Ray could not run a task: the cluster is unreachable, or a worker kept dying."""


@ray.remote
class _TaskActor:
    """Runs tasks of whichever stage's work it is given, keeping that work loaded."""

    def __init__(self, threads: int) -> None:
        import imacs

        # before a framework loads: one intra-op thread per CPU the actor holds, and idle
        # OpenMP threads that sleep, so actors sharing a machine do not slow each other
        imacs.set_threads(threads)
        self.work_id: str | None = None
        self.work: Callable[[Any], Any] | None = None

    def run(self, work: list[ray.ObjectRef], task: Any) -> Any:
        # the reference arrives wrapped in a list, so Ray does not fetch the work's bytes
        # for every task: only when this actor sees a stage for the first time
        ref = work[0]
        if ref.hex() != self.work_id:
            self.work = None  # the previous stage's models go before the next ones load
            self.work = pickle.loads(ray.get(ref))
            self.work_id = ref.hex()
        assert self.work is not None
        return self.work(task)

    def pid(self) -> int:
        return os.getpid()


class RayExecutor(Executor):
    """Runs a comparison's tasks on Ray actors, locally or on a cluster.

    Parameters
    ----------
    address:
        The cluster to join: ``"auto"`` (a cluster started on this machine with ``ray
        start``), ``"ray://host:10001"`` (Ray Client), or ``"host:6379"``. ``None``:
        ``$RAY_ADDRESS`` if set, else a Ray instance started on this machine for this
        process. Ignored when Ray is already initialised in this process.
    workers:
        Actors in the pool; ``None``: as many as the cluster's CPUs allow at ``num_cpus``
        each. Actors wait for CPUs that other work holds.
    num_cpus, num_gpus:
        What each actor reserves. With ``num_gpus`` the adapters run on the GPU when the
        model's ``device`` option allows it.
    tasks_per_worker:
        Tasks sent to an actor at once: 2 keeps it busy while its next task's arguments
        travel.
    max_restarts, max_task_retries:
        How often Ray starts a dead actor again, and runs a task again whose actor
        died. A task raising an error is not retried.
    init_options:
        Keyword arguments for ``ray.init`` when this executor starts or joins Ray
        (``runtime_env``, ``num_cpus``, ``object_store_memory``...).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        num_cpus: float = 1,
        num_gpus: float = 0,
        tasks_per_worker: int = 2,
        max_restarts: int = 3,
        max_task_retries: int = 3,
        init_options: Mapping[str, Any] | None = None,
    ):
        if address is not None and not isinstance(address, str):
            raise InvalidInputError(
                f"expected address as text such as 'auto' or 'host:6379'; got {address!r}"
            )
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise InvalidInputError(f"expected workers to be a positive int; got {workers!r}")
        for what, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidInputError(f"expected {what} to be a number >= 0; got {value!r}")
        for what, value in (
            ("tasks_per_worker", tasks_per_worker),
            ("max_restarts", max_restarts + 1),
            ("max_task_retries", max_task_retries + 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                least = 1 if what == "tasks_per_worker" else 0
                raise InvalidInputError(f"expected {what} to be an int >= {least}; got {value!r}")
        self.address = address
        self.workers = workers
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.tasks_per_worker = tasks_per_worker
        self.max_restarts = max_restarts
        self.max_task_retries = max_task_retries
        self.init_options = dict(init_options or {})

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r}, workers={self.workers!r})"

    # -- the executor contract -------------------------------------------------------

    def check_models(self, models: Mapping[str, ModelAdapter]) -> None:
        """Raise :class:`~imacs.adapters.recipe.ModelNotPortableError` for a model that
        cannot be loaded again on a worker, and :class:`RayExecutorError` for a cluster
        address that does not answer, before the comparison starts its work."""
        for side, model in models.items():
            PortableModel(model, side=side).check()
        if not ray.is_initialized():
            _check_reachable(self._address())

    def check_store(self, store: Store) -> None:
        """Refuse a store that the workers' processes cannot reach (``memory://``)."""
        if not store.shared:
            raise InvalidInputError(
                f"the store {store.location!r} lives in this process only, and the Ray "
                "workers run in others: give a folder every node reaches at the same path, "
                "or an object store URL such as s3://bucket/imacs-store"
            )

    def map(self, function: Callable[[T], R], tasks: Iterable[T]) -> Iterator[tuple[T, R]]:
        queue = deque(tasks)
        if not queue:
            return
        payload = _pickled(function)
        self._connect()
        work = [ray.put(payload)]
        actors = self._pool(len(queue))
        running: dict[Any, tuple[Any, T]] = {}
        busy = dict.fromkeys(range(len(actors)), 0)

        def submit(number: int) -> None:
            while queue and busy[number] < self.tasks_per_worker:
                task = queue.popleft()
                running[actors[number].run.remote(work, task)] = (number, task)
                busy[number] += 1

        try:
            for number in busy:
                submit(number)
            while running:
                done, _ = ray.wait(list(running), num_returns=1)
                number, task = running.pop(done[0])
                busy[number] -= 1
                yield task, _result(done[0], task, self.max_task_retries)
                submit(number)
        finally:
            for ref in running:  # a failed or abandoned stage leaves nothing running
                ray.cancel(ref)

    def shutdown(self) -> None:
        """End this executor's pool of actors, giving their CPUs back to the cluster."""
        pool = _POOLS.pop(self._pool_key(), None)
        for actor in pool[1] if pool else []:
            ray.kill(actor)

    # -- Ray ---------------------------------------------------------------------------

    def _address(self) -> str | None:
        return self.address or os.environ.get("RAY_ADDRESS") or None

    def _connect(self) -> None:
        if ray.is_initialized():
            return
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        options.update(self.init_options)
        address = self._address()
        _check_reachable(address)
        try:
            ray.init(address=address, **options)
        except ConnectionError as exc:
            raise _unreachable(address, exc) from exc

    def _pool_key(self) -> tuple[Any, ...]:
        return (
            self.workers,
            self.num_cpus,
            self.num_gpus,
            self.max_restarts,
            self.max_task_retries,
        )

    def _pool(self, n_tasks: int) -> list[Any]:
        """The actors, started on first use; as many as the cluster can hold."""
        session = ray.get_runtime_context().get_job_id()
        pool = _POOLS.get(self._pool_key())
        if pool is None or pool[0] != session:  # none yet, or from before a ray.shutdown()
            wanted = self.workers
            if wanted is None:
                # the cluster's CPUs, not its free ones: the last stage's actors may
                # still be giving theirs back
                cpus = ray.cluster_resources().get("CPU", 0.0)
                wanted = int(cpus // self.num_cpus) if self.num_cpus else 1
                if wanted < 1:
                    raise RayExecutorError(
                        f"the Ray cluster has {cpus:g} CPUs, fewer than one worker's "
                        f"num_cpus={self.num_cpus:g}: add a node, or lower num_cpus"
                    )
            options = {
                "num_cpus": self.num_cpus,
                "num_gpus": self.num_gpus,
                "max_restarts": self.max_restarts,
                "max_task_retries": self.max_task_retries,
            }
            threads = max(1, int(self.num_cpus))
            actors = [_TaskActor.options(**options).remote(threads) for _ in range(wanted)]
            pool = _POOLS[self._pool_key()] = (session, actors)
        return pool[1][: max(1, min(len(pool[1]), n_tasks))]


def _unreachable(address: str | None, reason: Exception) -> RayExecutorError:
    return RayExecutorError(
        f"could not join the Ray cluster at {address!r}: {reason}. Start it with "
        "`ray start --head` (and `ray start --address=HEAD:6379` on each worker "
        "machine), or leave address unset to start Ray on this machine"
    )


def _check_reachable(address: str | None) -> None:
    """Raise :class:`RayExecutorError` if ``address`` names a host and port that do not
    accept a connection within :data:`CONNECT_TIMEOUT` seconds.

    ``ray.init`` itself retries such an address for many minutes, printing warnings,
    before it gives up. ``None``, ``"auto"`` and ``"local"`` are left to Ray.
    """
    if address is None:
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", "local", or text Ray explains the fault of better
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise _unreachable(address, exc) from exc


def _pickled(function: Callable[..., Any]) -> bytes:
    """``function`` as bytes of the standard pickle: data and recipes, never closures."""
    try:
        return pickle.dumps(function, protocol=pickle.HIGHEST_PROTOCOL)
    except ImacsError:
        raise  # a model without a recipe says what to pass instead
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise InvalidInputError(
            f"the comparison's work cannot be sent to Ray workers: {exc}. Components and "
            "models must be plain objects of importable classes (no lambdas or local "
            "functions); give functions by name, such as factory='package.module:build'"
        ) from exc


def _result(ref: Any, task: Any, retries: int) -> Any:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        # an error of imacs or of a component: raised here as itself
        raise exc.as_instanceof_cause() from None
    except ray.exceptions.RayActorError as exc:
        raise RayExecutorError(
            f"the Ray worker running images {task} died {retries + 1} times: {exc}. A "
            "worker that runs out of memory dies this way: lower batch_size, or give each "
            "worker more memory (num_cpus= per actor, fewer workers=)"
        ) from exc
