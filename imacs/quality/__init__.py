"""Quality measures: can a model's attribution maps be trusted?

The base class and result type are in :mod:`imacs.quality.base`; each built-in measure is
one module, registered through the ``register_quality_measures`` hook like a plugin's.
"""
