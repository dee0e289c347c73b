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
    """An installed plugin could not be imported; imacs goes on without it."""


class StoreError(ImacsError, RuntimeError):
    """A result store that cannot be used: written by another format, or not a store."""
