"""Unit tests run the use cases on the in-memory twin (tests/support/twin.py): no moto, no HTTP."""

from tests.support.twin import twin

__all__ = ["twin"]
