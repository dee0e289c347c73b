"""What the command line says on standard error, and how loud the frameworks may be.

Every imacs module logs to its own logger, ``logging.getLogger(__name__)``, under the
``imacs`` logger. A program that uses imacs as a library configures logging as it likes;
the ``imacs`` command calls :func:`configure` once per command, which sends imacs's
messages and warnings to standard error at the level ``--quiet`` (warnings and errors),
the default (also information) or ``--verbose`` (also debugging details) asks for.

The frameworks talk a lot: TensorFlow's C++ core writes lines such as ``I0000 ...
cpu_feature_guard.cc] This TensorFlow binary is optimized...`` while it is imported,
before its own log level applies, and Keras and PyTorch raise warnings meant for their
own users. Unless ``--verbose``, :func:`quiet_frameworks` sets their log levels before they
are imported, and :func:`native_output_captured` holds back what native code writes to
the stderr file descriptor while a model loads (where TensorFlow is imported).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

#: ``--quiet``, the default, ``--verbose``
QUIET, NORMAL, VERBOSE = -1, 0, 1
_LEVELS = {QUIET: logging.WARNING, NORMAL: logging.INFO, VERBOSE: logging.DEBUG}
#: environment variables read by the frameworks' native code when it starts
FRAMEWORK_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow C++: errors only, once absl logging is set up
    "GRPC_VERBOSITY": "ERROR",
    "GLOG_minloglevel": "3",
}
#: Python loggers of the frameworks, kept to errors unless --verbose
FRAMEWORK_LOGGERS = ("tensorflow", "absl", "keras", "h5py", "torch", "jax")

_IMACS_ROOT = str(Path(__file__).resolve().parent)
_handler: logging.Handler | None = None
logger = logging.getLogger(__name__)


class _StderrHandler(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is when a message comes."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


class _Formatter(logging.Formatter):
    """``message`` for information, ``warning: message`` and ``error: message`` otherwise."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno == logging.INFO:
            return message
        return f"{record.levelname.lower()}: {message}"


def configure(verbosity: int = NORMAL) -> None:
    """Send imacs's log messages and Python warnings to standard error at ``verbosity``.

    Warnings raised by imacs's own code are shown at every verbosity; those of the
    frameworks and other libraries only with ``VERBOSE``. Calling it again replaces the
    previous configuration (each command of the CLI calls it).
    """
    global _handler
    root = logging.getLogger("imacs")
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = _StderrHandler()
    _handler.setFormatter(_Formatter())
    root.addHandler(_handler)
    root.setLevel(_LEVELS[verbosity])
    warnings.showwarning = _show_warning
    if verbosity >= VERBOSE:
        # the frameworks' own warnings are debugging details; show each once, not filtered
        warnings.simplefilter("default")


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    ours = str(Path(filename).resolve()).startswith(_IMACS_ROOT)
    level = logging.WARNING if ours else logging.DEBUG
    where = "" if ours else f" ({category.__name__} from {filename}:{lineno})"
    logging.getLogger("imacs.warnings").log(level, "%s%s", message, where)


def quiet_frameworks() -> None:
    """Keep TensorFlow, Keras and PyTorch to errors; call it before they are imported.

    Environment variables the user set are left as they are.
    """
    for name, value in FRAMEWORK_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    _framework_loggers_to_errors()


def _framework_loggers_to_errors() -> None:
    for name in FRAMEWORK_LOGGERS:
        if name != "absl" or "absl.logging" in sys.modules:
            # absl installs its own logger class when imported; create it no earlier
            logging.getLogger(name).setLevel(logging.ERROR)


@contextmanager
def native_output_captured() -> Iterator[None]:
    """Hold back what native code writes to file descriptor 2 in this block.

    Python's own ``sys.stderr`` keeps writing to the terminal, so imacs's messages and
    progress are not held back; only lines that compiled code writes directly (TensorFlow
    logs its CPU features and oneDNN settings while it is imported, whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says). They are logged at debug level afterwards. For quiet
    runs only: the frameworks' Python loggers are set to errors again at the end.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no descriptor 2 (a closed or embedded stderr)
        yield
        return
    original = sys.stderr
    # Python-level writes to the real stderr go around the capture, to the saved descriptor
    around = None
    if original is sys.__stderr__ and original is not None:
        around = open(  # noqa: SIM115 - closed in the finally below
            saved, "w", buffering=1, encoding=original.encoding, errors="replace", closefd=False
        )
        sys.stderr = around
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            if around is not None:
                around.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sys.stderr = original
            if around is not None:
                around.close()
            sink.seek(0)
            held = sink.read().decode("utf-8", "replace").strip()
            _framework_loggers_to_errors()  # importing a framework may have reset them
            if held:
                logger.debug("native output held back:\n%s", held)
