"""Drop reason texts in the TYPE column."""

from __future__ import annotations

import pytest

from flowscope.common.dropreasons import DROP_REASON_TEXTS, drop_reason_text
from flowscope.proto.flow import flow_pb2


@pytest.mark.parametrize(("code", "text"), [
    (flow_pb2.POLICY_DENIED, "Policy denied"),
    (flow_pb2.POLICY_DENY, "Policy denied by denylist"),
    (flow_pb2.STALE_OR_UNROUTABLE_IP, "Stale or unroutable IP"),
    (flow_pb2.CT_MISSING_TCP_ACK_FLAG, "Fragmentation needed"),
    (flow_pb2.AUTH_REQUIRED, "Authentication required"),
    (flow_pb2.NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT,
     "No tunnel/encapsulation endpoint (datapath BUG!)"),
    (flow_pb2.DROP_PUNT_PROXY, "Punt to proxy"),
    (0, "Success"),
    (159, "159, 0"),
    (250, "250, 0"),
    # The datapath reason is 8 bits wide.
    (256 + 133, "Policy denied"),
])
def test_drop_reason_text(code: int, text: str) -> None:
    assert drop_reason_text(code) == text


def test_every_drop_reason_has_a_text() -> None:
    missing = [
        name for name, code in flow_pb2.DropReason.items()
        if code not in DROP_REASON_TEXTS
    ]
    assert missing == []
