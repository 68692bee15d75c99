"""A policy directory the collector keeps in force: `flowscope collector --policy-dir DIR`.

The collector polls the modification times of the directory's policy files; when they change,
the whole directory is parsed again, its policies are applied (one revision) and the policies
that came from it earlier but are gone from it are deleted. A directory that does not parse
changes nothing: the error (file, line, path, problem) is reported once per change of the
files and the policies in force stay.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from flowscope.collector.policy import Change, Policy, PolicyName, load_policies
from flowscope.collector.policy.yamlnodes import POLICY_FILE_SUFFIXES
from flowscope.common.errors import FlowscopeError

log = logging.getLogger(__name__)

# (file name, modification time in ns, size) of each policy file
Snapshot = frozenset[tuple[str, int, int]]


class PolicyDirectory:
    def __init__(self, path: Path, apply: Callable[[list[Policy]], Change],
                 delete: Callable[[PolicyName], Change]) -> None:
        self.path = path
        self._apply = apply
        self._delete = delete
        self._seen: Snapshot | None = None
        self._from_here: set[PolicyName] = set()
        self.last_error: str | None = None

    def poll(self) -> bool:
        """Bring the policies in force in line with the directory if its files changed;
        whether they were (re)applied."""
        snapshot = self._snapshot()
        if snapshot == self._seen:
            return False
        self._seen = snapshot
        try:
            policies = load_policies(self.path) if snapshot else []
        except FlowscopeError as exc:
            self.last_error = str(exc)
            log.error("policy directory %s not applied: %s", self.path, exc)
            return False
        names = {policy.id for policy in policies}
        if policies:
            self._apply(policies)
        for gone in sorted(self._from_here - names, key=str):
            self._delete(gone)
        self._from_here = names
        self.last_error = None
        return True

    def _snapshot(self) -> Snapshot:
        try:
            files = [p for p in self.path.iterdir()
                     if p.suffix in POLICY_FILE_SUFFIXES and p.is_file()]
        except OSError as exc:
            raise FlowscopeError(f"cannot read policy directory {self.path}: "
                                 f"{exc.strerror}") from exc
        found = set()
        for file in files:
            info = file.stat()
            found.add((file.name, info.st_mtime_ns, info.st_size))
        return frozenset(found)
