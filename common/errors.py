"""flowscope's errors.

    FlowscopeError
    ├── FilterError        a filter value or flag that cannot be compiled
    ├── InputError         a malformed input line, file or request
    ├── NotSupportedError  the kernel or platform lacks a feature
    └── StorageError       the store failed or refused a query
"""

from __future__ import annotations


class FlowscopeError(Exception):
    """Root of flowscope's own errors; the message is meant for the user."""


class FilterError(FlowscopeError):
    """A filter that cannot be compiled. Raised once, when the filter is built."""

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"invalid {field} {value!r}: {problem}")


class InputError(FlowscopeError):
    """Malformed input: a JSON line, a file, a request."""


class NotSupportedError(FlowscopeError):
    """The kernel or platform lacks a feature; the message names it."""


class StorageError(FlowscopeError):
    """The store failed or refused a query."""
