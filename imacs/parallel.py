"""Running independent pieces of work on threads.

Used where the work releases the GIL (scikit-image's Felzenszwalb, scikit-learn's
k-means, large numpy operations), so that threads run it on several cores at once.
Results come back in the order of the inputs, so they never depend on the number of
threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def thread_map(
    work: Callable[[Item], Result], items: Iterable[Item], n_jobs: int | None = None
) -> list[Result]:
    """``[work(item) for item in items]`` on up to ``n_jobs`` threads (None: every core)."""
    items = list(items)
    workers = min(len(items), n_jobs or available_cores())
    if workers <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(work, items))
