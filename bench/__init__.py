"""bench: a plugin-based benchmark suite for HPO and NAS on large language models.

The core imports no torch, transformers, smac or nevergrad: those load lazily,
only when a problem or optimizer that needs them is created.
"""

__version__ = "0.1.0"
