"""What every imacs component has in common: a name, keyword parameters, a citation.

Components follow scikit-learn's habit: the constructor takes keyword parameters with
defaults and stores each one unchanged under its own name, so ``get_params`` can read
them back, a run can record them, and a store can key cached results on them.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar


class Component:
    """Base of attribution methods, segmenters, featurizers and metrics."""

    #: The name users type to pick this component (``method="integrated-gradients"``).
    name: ClassVar[str] = ""
    #: Adapter capabilities the component needs (``"layers"``, ``"embedding"``).
    requires: ClassVar[frozenset[str]] = frozenset()
    #: The paper or source the component implements, for docstrings and reports.
    citation: ClassVar[str] = ""
    #: Bumped by the component's author whenever a change of its code changes its results:
    #: stored results are keyed on it (and on the providing distribution's version), so
    #: results of the old code are not reused.
    version: ClassVar[str | None] = None

    @classmethod
    def param_names(cls) -> list[str]:
        """The keyword parameters the constructor accepts."""
        signature = inspect.signature(cls.__init__)
        return [
            p.name
            for p in signature.parameters.values()
            if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters as this instance holds them."""
        return {name: getattr(self, name) for name in self.param_names()}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
