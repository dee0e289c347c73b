"""Exceptions raised by imacs.

Every error says what was expected, what was received and what to do. Each class also
derives from the closest built-in exception, so ``except ValueError`` keeps working for
callers that do not know imacs.
"""

from __future__ import annotations


class ImacsError(Exception):
    """Base class of every error imacs raises on purpose."""


class InvalidInputError(ImacsError, ValueError):
    """Images, targets or parameters that do not fit the contract."""


class ModelLoadError(ImacsError, ValueError):
    """A model object or file that no installed adapter can load."""


class UntrustedModelError(ModelLoadError):
    """Loading the file would execute pickled code, and the user has not allowed it."""


class MissingCapabilityError(ImacsError, TypeError):
    """A component needs an adapter capability (layers, embedding) the adapter lacks."""


class PluginError(ImacsError, RuntimeError):
    """A plugin is wrong: an unknown hook, a bad signature, a component of the wrong type."""


class DuplicateComponentError(PluginError):
    """Two plugins registered a component of the same kind under the same name."""


class UnknownComponentError(ImacsError, LookupError):
    """No installed plugin provides a component by that name."""

    def __str__(self) -> str:  # LookupError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class PluginLoadWarning(UserWarning):
    """A plugin is broken and skipped; imacs goes on without it.

    It fails to import, implements a hook wrongly, registers something that is not a
    component, or registers a component under a name another plugin uses.
    """


class StoreError(ImacsError, RuntimeError):
    """A result store that cannot be used: another format, not a store, or not writable."""


class StoreWarning(UserWarning):
    """A stored result was damaged or unreadable; imacs removes it and computes it again."""


class OutputError(ImacsError, OSError):
    """A comparison's output folder that cannot be written: a full disk, no permission."""
