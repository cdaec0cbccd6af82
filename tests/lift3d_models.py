"""Small random temporal CNNs for tests: built by :func:`posepipe.testing.random_model`.

Kept for the test modules that import ``random_model`` from here; new code imports it from
posepipe.testing.
"""

from posepipe.testing import random_model

__all__ = ["random_model"]
