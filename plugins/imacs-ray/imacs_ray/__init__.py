"""imacs-ray: run a comparison's attribution and per-image stages on Ray.

Installing this package registers the ``ray`` executor::

    import imacs

    comparison = imacs.compare("a.pt", "b.keras", "images/", executor="ray")
    comparison = imacs.compare(
        "a.pt", "b.keras", "images/", executor="ray", executor_params={"address": "auto"}
    )

or ``imacs compare --executor ray``. The models travel to the workers as what loaded them
(a file, or a state dict and a factory), each worker loads them once, and the tables are
the same as those of a run in one process (docs/scale-out.md).

imacs imports every installed plugin when it starts, so this module does not import Ray:
the executor is registered by reference and Ray is imported when a comparison uses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imacs.hookspecs import Register, hookimpl

if TYPE_CHECKING:
    from imacs_ray.executor import RayExecutor

__all__ = ["RayExecutor", "register_executors"]


def __getattr__(name: str) -> Any:
    # `from imacs_ray import RayExecutor` works without importing Ray eagerly
    if name == "RayExecutor":
        from imacs_ray.executor import RayExecutor

        return RayExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def register_executors(register: Register) -> None:
    """Register :class:`~imacs_ray.executor.RayExecutor` as executor ``"ray"``."""
    register("imacs_ray.executor:RayExecutor", name="ray")
