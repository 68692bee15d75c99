/* flowscope's policy maps: the contract between the policy compiler in user space
 * (collector/policy/, mirrored once in collector/policy/bpfmaps.py) and the tc program.
 *
 * Maps
 *   fs_policy       LPM trie   struct fs_policy_key -> struct fs_policy_value
 *   fs_enforcement  hash       __u32 endpoint identity -> struct fs_enforcement_value
 *   ipcache         LPM trie   (flowscope.h) CIDR rules add prefixes whose identities are
 *                              local ones: FS_IDENTITY_LOCAL_FLAG | n
 *
 * Decision for one packet in the forward direction of a connection (replies pass through the
 * connection map and are not looked up). Traffic between two endpoints of this node is checked
 * twice: EGRESS at the source endpoint (remote = destination) and INGRESS at the destination
 * endpoint (remote = source); it passes only if both pass.
 *
 *   1. e = fs_enforcement[endpoint identity]; if e is missing or lacks the direction's ENFORCED
 *      bit, the packet passes and no policy verdict is reported.
 *   2. r1 = longest match of {endpoint, remote identity, direction, proto, dport}
 *      r0 = longest match of {endpoint, 0,               direction, proto, dport}
 *      Within one lookup the longest prefix wins:
 *        (identity, proto, port range)  L3-L4      (identity, proto, any port)  L3-Proto
 *        (identity, any proto)          L3-Only
 *        (0, proto, port range)         L4-Only    (0, proto, any port)         Proto-Only
 *        (0, any proto)                 all
 *   3. first of: r1 if it denies; r0 if it denies; r1; r0. The chosen value's match_type and
 *      policy_ref are reported as they are (the compiler writes match type none into deny
 *      values, as Hubble reports denials).
 *   4. nothing matched: denied by default, match type none, drop reason POLICY_DENIED (133);
 *      an explicit deny value drops with POLICY_DENY (181).
 *   5. a denial passes with verdict AUDIT when the value has FS_POLICY_AUDIT or, for the
 *      default denial, e has the direction's AUDIT bit.
 * Two lookups per check, whatever the number of rules: port ranges are stored as port
 * prefixes (a range is split into at most 30 aligned blocks), and the compiler has already
 * resolved "deny wins" inside each lookup (an allow nested in a deny prefix of the same
 * remote identity is written as a deny).
 *
 * Updates (no moment without the old or the new rules): user space applies a change as
 *   1. ipcache additions and updates (new CIDR identities resolve before rules use them)
 *   2. fs_policy additions and updates
 *   3. fs_enforcement additions, updates and deletions (enforcement starts only once its
 *      entries are in place, and stops before they go)
 *   4. fs_policy deletions of stale entries
 *   5. ipcache deletions
 * so every entry holds either its old or its new value at any time. Each map update is atomic
 * in the kernel. Then user space bumps the policy_generation map (flowscope.bpf.c), also after
 * changes of endpoint identities in the ipcache.
 *
 * The tc program checks every forward packet: it keeps each check's decision in the
 * connection's entry of the connection table with the generation it was made at, and decides
 * again when the generation moved, so a revoked allow cuts live connections at their next
 * packet while an unchanged policy costs one array lookup per packet.
 */
#ifndef FLOWSCOPE_POLICY_H
#define FLOWSCOPE_POLICY_H

#include <linux/types.h>

/* struct fs_policy_key.direction: the TrafficDirection enum values. */
#define FS_POLICY_INGRESS 1
#define FS_POLICY_EGRESS 2

/* struct fs_policy_value.verdict */
#define FS_POLICY_ALLOW 1
#define FS_POLICY_DENY 2

/* struct fs_policy_value.flags */
#define FS_POLICY_AUDIT 0x1 /* a denial by this entry passes, reported as AUDIT */

/* struct fs_enforcement_value.flags */
#define FS_ENFORCE_INGRESS 0x1
#define FS_ENFORCE_EGRESS 0x2
#define FS_AUDIT_INGRESS 0x4 /* default denials in this direction pass as AUDIT */
#define FS_AUDIT_EGRESS 0x8

/* Identities that CIDR rules allocate carry this bit (Hubble's local identity range). */
#define FS_IDENTITY_LOCAL_FLAG (1u << 24)

/* Bits of the key's data that are always matched (endpoint, remote, direction); the
 * protocol adds 8 and the port 0 to 16 (a port prefix). prefixlen is
 * FS_POLICY_PREFIX_FIXED (any protocol), + 8 (any port), or + 8 + port prefix bits. */
#define FS_POLICY_PREFIX_FIXED 72
#define FS_POLICY_PREFIX_FULL 96

/* LPM trie key. The data after prefixlen is in network byte order so that prefixes of the
 * port are prefixes of its bits. */
struct fs_policy_key {
	__u32 prefixlen;
	__be32 endpoint_identity;
	__be32 remote_identity; /* 0: any */
	__u8 direction;
	__u8 protocol; /* IPPROTO_TCP, _UDP, _SCTP; 0 with prefixlen 72: any */
	__be16 dport;
};

struct fs_policy_value {
	__u32 policy_ref; /* user space's table of (name, namespace, kind, revision) sets; 0: none */
	__u8 verdict;     /* FS_POLICY_ALLOW or FS_POLICY_DENY */
	__u8 match_type;  /* reported as Flow.policy_match_type (Hubble's numbering) */
	__u8 flags;       /* FS_POLICY_AUDIT */
	__u8 pad;
};

struct fs_enforcement_value {
	__u32 flags; /* FS_ENFORCE_*, FS_AUDIT_* */
};

#define FS_POLICY_KEY_SIZE 16
#define FS_POLICY_VALUE_SIZE 8
#define FS_ENFORCEMENT_VALUE_SIZE 4

_Static_assert(sizeof(struct fs_policy_key) == FS_POLICY_KEY_SIZE, "fs_policy_key size");
_Static_assert(sizeof(struct fs_policy_value) == FS_POLICY_VALUE_SIZE, "fs_policy_value size");
_Static_assert(sizeof(struct fs_enforcement_value) == FS_ENFORCEMENT_VALUE_SIZE,
	       "fs_enforcement_value size");

#endif /* FLOWSCOPE_POLICY_H */
