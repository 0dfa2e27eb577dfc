"""The public disclosure lists of art. 29 (registry.py: the framework; lists.py: the lists).
Importing the package registers every list."""

from disclosure import lists  # noqa: F401  (registers the lists)
from disclosure.registry import REGISTRY  # noqa: F401
