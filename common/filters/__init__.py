"""The one filter language: Hubble's FlowFilter, compiled for memory or for the store.

    compile_predicate(whitelist, blacklist)  -> Callable[[Flow], bool]
    compile_sql(whitelist, blacklist)        -> SqlCondition(sql, params)

Both raise FilterError once, at compile time, for a value they cannot use.
Each filter dimension lives in its own module with both halves (predicate and
SQL); registry.DIMENSIONS lists them.
"""

from __future__ import annotations

from flowscope.common.filters.compile import SqlCondition, compile_predicate, compile_sql
from flowscope.common.filters.registry import DIMENSIONS

__all__ = ["DIMENSIONS", "SqlCondition", "compile_predicate", "compile_sql"]
