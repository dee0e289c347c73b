"""Thread pools of PyTorch and TensorFlow in one process, on a machine other work shares.

Both frameworks size their pools to every core and, by default, keep idle worker threads
spinning for a while after each operation (OpenMP's active wait in PyTorch, the Eigen
pool's spinning in TensorFlow). In a process that runs both, or on a machine another
process keeps busy, the spinning threads take the cores the working ones need.
:func:`set_threads` sets, in one place:

- the OpenMP wait policy: ``OMP_WAIT_POLICY=PASSIVE`` (idle OpenMP threads sleep) and
  ``KMP_BLOCKTIME=0`` (the same for Intel's OpenMP, which MKL may bring). The OpenMP
  runtime reads them once, when it loads with ``torch``: they act only if set before the
  first ``import torch``, and :func:`set_threads` says whether they did;
- PyTorch's intra-op threads (``torch.set_num_threads``, effective at any time; before
  torch is imported through ``OMP_NUM_THREADS``);
- TensorFlow's intra- and inter-op threads (``tf.config.threading``, effective until
  TensorFlow initialises its runtime; before it is imported through
  ``TF_NUM_INTRAOP_THREADS`` and ``TF_NUM_INTEROP_THREADS``).

The same is done at ``import imacs`` when the environment variable ``IMACS_THREADS`` is
set (a number of threads, or ``passive`` for the wait policy alone), so a command line run
(``IMACS_THREADS=2 imacs compare ...``) needs no code. Nothing is changed by default:
benchmarks/threads.py measures when it helps (docs/performance.md).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from imacs.errors import InvalidInputError

#: the environment variable read at ``import imacs``
ENVIRONMENT_VARIABLE = "IMACS_THREADS"


def set_threads(threads: int | None = None, *, passive: bool = True) -> dict[str, Any]:
    """Set both frameworks' thread pools; return what took effect.

    Parameters
    ----------
    threads:
        Intra-op threads for PyTorch and TensorFlow (TensorFlow's inter-op pool gets 1:
        imacs sends one batch at a time). ``None`` leaves the counts as they are.
    passive:
        Idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``,
        ``KMP_BLOCKTIME=0``); only possible before ``torch`` is first imported.

    Returns a dict with one entry per setting, saying ``"set"``, ``"environment"`` (the
    library reads it when it loads) or why it could not be applied.
    """
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise InvalidInputError(f"expected threads to be an int >= 1 or None; got {threads!r}")
    done: dict[str, Any] = {}
    if passive:
        if "torch" in sys.modules:
            done["wait_policy"] = "torch is already imported: its OpenMP runtime keeps its policy"
        else:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
            os.environ["KMP_BLOCKTIME"] = "0"
            done["wait_policy"] = "environment"
    if threads is None:
        return done
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)
        done["torch"] = "set"
    else:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        done["torch"] = "environment"
    if "tensorflow" in sys.modules:
        import tensorflow as tf  # type: ignore[import-untyped]

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
            done["tensorflow"] = "set"
        except RuntimeError:
            done["tensorflow"] = "TensorFlow is already initialised: its pools keep their sizes"
    else:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = "1"
        done["tensorflow"] = "environment"
    return done


def threads_from_environment() -> dict[str, Any] | None:
    """Apply ``IMACS_THREADS`` (a positive int, or ``passive``) if it is set."""
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower()
    if not value:
        return None
    if value == "passive":
        return set_threads(None)
    if not value.isdigit() or int(value) < 1:
        raise InvalidInputError(
            f"expected {ENVIRONMENT_VARIABLE} to be a number of threads >= 1 or 'passive'; "
            f"got {value!r}"
        )
    return set_threads(int(value))
