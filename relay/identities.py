"""Cluster-wide identities: the relay gives each label set one number for every node.

    identities = ClusterIdentities(store.identities())
    identities.load()                         # the numbers the store holds
    identities.allocate([labels, ...])        # numbers, allocated and stored where new
    add_identities_service(server, identities)

Collectors started with --relay ask through `flowscope.identity.Identities/Allocate`. One
allocator per relay process holds the numbers in memory behind one lock, so an allocation is
atomic: a new number is stored before any node learns it, and a number the store did not take
is not handed out. Numbers follow common/identity.py's rule (256 to 65535, derived from the
label set's hash) and survive restarts of the relay on the same store. Relays that share one
ClickHouse server must leave allocation to one of them: the store has no cross-process lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Final, Protocol

import grpc

from flowscope.common.errors import InputError, StorageError
from flowscope.common.identity import IdentityNumbers, label_key
from flowscope.proto.identity import identity_pb2, identity_pb2_grpc

log = logging.getLogger(__name__)

# Label sets in one Allocate call; more is INVALID_ARGUMENT (clients send batches).
MAX_LABEL_SETS: Final = 10_000


class IdentityTable(Protocol):
    """Where the numbers persist (relay/store/identities.py's IdentityRows)."""

    def load(self) -> list[tuple[str, int]]: ...

    def append(self, numbers: dict[str, int]) -> None: ...


class ClusterIdentities:
    """The relay's allocator; load() before the first allocate()."""

    def __init__(self, table: IdentityTable) -> None:
        self._table = table
        self._lock = threading.Lock()
        self._numbers: IdentityNumbers | None = None

    def load(self) -> int:
        """Reads the stored numbers; how many. StorageError when the store cannot answer or
        holds two numbers for a label set or one number for two."""
        rows = self._table.load()
        known = dict(rows)
        if len(known) != len(rows):
            raise StorageError("the identities table holds two numbers for one label set")
        try:
            numbers = IdentityNumbers(known, "the identities table")
        except InputError as err:
            raise StorageError(str(err)) from None
        with self._lock:
            self._numbers = numbers
        return len(known)

    def allocate(self, label_sets: Sequence[Iterable[str]], node: str = "") -> list[int]:
        """The numbers of the label sets, in order. InputError for a malformed label set;
        StorageError when new numbers cannot be stored (none is allocated then)."""
        keys = [label_key(labels) for labels in label_sets]
        if "" in keys:
            raise InputError("a label set without labels has no identity")
        with self._lock:
            numbers = self._numbers
            if numbers is None:
                raise StorageError("the relay's identities are not loaded")
            new = {key: numbers.allocate(key) for key in keys if numbers.get(key) is None}
            if new:
                try:
                    self._table.append(new)
                except StorageError:
                    for key in new:
                        numbers.forget(key)
                    raise
            answer = [numbers.allocate(key) for key in keys]
        for key, number in new.items():
            log.info("identity %d allocated for %s (asked by %s)", number, key, node or "?")
        return answer


class IdentitiesServicer(identity_pb2_grpc.IdentitiesServicer):
    def __init__(self, identities: ClusterIdentities) -> None:
        self._identities = identities

    def Allocate(
        self, request: identity_pb2.AllocateRequest, context: grpc.ServicerContext
    ) -> identity_pb2.AllocateResponse:
        if len(request.label_sets) > MAX_LABEL_SETS:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{len(request.label_sets)} label sets in one call: at most {MAX_LABEL_SETS}",
            )
        try:
            numbers = self._identities.allocate(
                [label_set.labels for label_set in request.label_sets], request.node_name
            )
        except InputError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        except StorageError as err:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(err))
        return identity_pb2.AllocateResponse(identities=numbers)


def add_identities_service(server: grpc.Server, identities: ClusterIdentities) -> None:
    identity_pb2_grpc.add_IdentitiesServicer_to_server(IdentitiesServicer(identities), server)
