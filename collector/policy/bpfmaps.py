"""The one Python mirror of bpf/policy.h: constants and the map key and value structs.

The compiler works with plain tuples (PolicyKey, PolicyValue); the collector writes them into
the kernel maps through encode_key() and encode_value(). Sizes are asserted here and the
constants are checked against the header by the unit tests.
"""

from __future__ import annotations

import ctypes
from typing import Final, NamedTuple

# struct fs_policy_key.direction: model.Direction's values (TrafficDirection)
FS_POLICY_INGRESS: Final = 1
FS_POLICY_EGRESS: Final = 2
# struct fs_policy_value.verdict
FS_POLICY_ALLOW: Final = 1
FS_POLICY_DENY: Final = 2
# struct fs_policy_value.flags
FS_POLICY_AUDIT: Final = 0x1
# struct fs_enforcement_value.flags
FS_ENFORCE_INGRESS: Final = 0x1
FS_ENFORCE_EGRESS: Final = 0x2
FS_AUDIT_INGRESS: Final = 0x4
FS_AUDIT_EGRESS: Final = 0x8
FS_IDENTITY_LOCAL_FLAG: Final = 1 << 24
FS_POLICY_PREFIX_FIXED: Final = 72
FS_POLICY_PREFIX_FULL: Final = 96
PORT_BITS: Final = 16


class FsPolicyKey(ctypes.Structure):
    _fields_ = (
        ("prefixlen", ctypes.c_uint32),
        ("endpoint_identity", ctypes.c_uint8 * 4),  # big-endian
        ("remote_identity", ctypes.c_uint8 * 4),  # big-endian
        ("direction", ctypes.c_uint8),
        ("protocol", ctypes.c_uint8),
        ("dport", ctypes.c_uint8 * 2),  # big-endian
    )


class FsPolicyValue(ctypes.Structure):
    _fields_ = (
        ("policy_ref", ctypes.c_uint32),
        ("verdict", ctypes.c_uint8),
        ("match_type", ctypes.c_uint8),
        ("flags", ctypes.c_uint8),
        ("pad", ctypes.c_uint8),
    )


class FsEnforcementValue(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint32),)


FS_POLICY_KEY_SIZE: Final = 16
FS_POLICY_VALUE_SIZE: Final = 8
FS_ENFORCEMENT_VALUE_SIZE: Final = 4
assert ctypes.sizeof(FsPolicyKey) == FS_POLICY_KEY_SIZE
assert ctypes.sizeof(FsPolicyValue) == FS_POLICY_VALUE_SIZE
assert ctypes.sizeof(FsEnforcementValue) == FS_ENFORCEMENT_VALUE_SIZE


class PolicyKey(NamedTuple):
    """A policy map key: a block of 2**(16 - port_bits) ports from port, of one protocol.

    protocol 0 means any protocol (then port and port_bits are 0); port_bits 0 with a
    protocol means any port; remote_identity 0 means any remote.
    """

    endpoint_identity: int
    remote_identity: int
    direction: int
    protocol: int
    port: int
    port_bits: int

    @property
    def prefixlen(self) -> int:
        if not self.protocol:
            return FS_POLICY_PREFIX_FIXED
        return FS_POLICY_PREFIX_FIXED + 8 + self.port_bits


class PolicyValue(NamedTuple):
    verdict: int  # FS_POLICY_ALLOW or FS_POLICY_DENY
    match_type: int  # Flow.policy_match_type
    policy_ref: int  # index into CompiledPolicy.refs; 0: none
    audit: bool


def encode_key(key: PolicyKey) -> FsPolicyKey:
    return FsPolicyKey(
        key.prefixlen,
        (ctypes.c_uint8 * 4)(*key.endpoint_identity.to_bytes(4, "big")),
        (ctypes.c_uint8 * 4)(*key.remote_identity.to_bytes(4, "big")),
        key.direction,
        key.protocol,
        (ctypes.c_uint8 * 2)(*key.port.to_bytes(2, "big")),
    )


def encode_value(value: PolicyValue) -> FsPolicyValue:
    return FsPolicyValue(value.policy_ref, value.verdict, value.match_type,
                         FS_POLICY_AUDIT if value.audit else 0, 0)


def encode_enforcement(flags: int) -> FsEnforcementValue:
    return FsEnforcementValue(flags)
