"""The filter dimensions, in the order their clauses are tested (Hubble's order).

Every FlowFilter field belongs to exactly one dimension; tests hold the list
to that.
"""

from __future__ import annotations

from typing import Final

from flowscope.common.filters import (
    cel,
    cluster,
    dns,
    encrypted,
    enums,
    event_type,
    fqdn,
    http,
    identity,
    interface,
    ip,
    label,
    names,
    node,
    port,
    protocol,
    reply,
    tcp_flags,
    trace,
    uuid,
    workload,
)
from flowscope.common.filters.base import Dimension

DIMENSIONS: Final[tuple[Dimension, ...]] = (
    uuid.UUID,
    event_type.EVENT_TYPE,
    enums.VERDICT,
    enums.DROP_REASON_DESC,
    reply.REPLY,
    encrypted.ENCRYPTED,
    identity.IDENTITY,
    protocol.PROTOCOL,
    ip.IP,
    names.POD,
    workload.WORKLOAD,
    names.SERVICE,
    fqdn.FQDN,
    dns.DNS_QUERY,
    label.LABELS,
    port.PORT,
    http.HTTP,
    tcp_flags.TCP_FLAGS,
    node.NODE_NAME,
    cluster.CLUSTER_NAME,
    enums.IP_VERSION,
    trace.TRACE_ID,
    enums.TRAFFIC_DIRECTION,
    cel.CEL_EXPRESSION,
    interface.INTERFACE,
    trace.IP_TRACE_ID,
)
