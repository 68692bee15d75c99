/* flowscope's datapath contract: the structs and constants that the BPF programs and the
 * collector in user space share. The collector mirrors these structs in collector/rawevent.py
 * and checks the mirrors against BCC's view of this file at load time.
 *
 * Only UAPI types are used here: the kernel headers available at build time may not match the
 * running kernel, and these structs must mean the same thing on both sides.
 */
#ifndef FLOWSCOPE_H
#define FLOWSCOPE_H

#include <linux/types.h>

/* struct fs_event.kind */
#define FS_EVENT_TRACE 1   /* a packet seen by the tc program at an endpoint's interface */
#define FS_EVENT_DROP 2    /* a packet the kernel dropped (skb:kfree_skb) */
#define FS_EVENT_CONNECT 3 /* a TCP connection opened by a local process (client side) */
#define FS_EVENT_LISTEN 4  /* a local process started listening on a TCP port */
#define FS_EVENT_POLICY_VERDICT 5 /* a policy decision for a connection (new or changed) */
#define FS_EVENT_POLICY_DROP 6    /* a packet the tc program dropped by policy */

/* struct fs_event.verdict and struct fs_conn.policy_verdict: Flow.verdict's values; 0 in
 * the connection map means the endpoint does not enforce that direction. */
#define FS_VERDICT_FORWARDED 1
#define FS_VERDICT_DROPPED 2
#define FS_VERDICT_AUDIT 4

/* struct fs_event.drop_reason of FS_EVENT_POLICY_* events: Hubble's DropReason values. */
#define FS_DROP_POLICY_DENIED 133 /* no rule allows */
#define FS_DROP_POLICY_DENY 181   /* an explicit deny rule */

/* Observation points, in the monitor's trace sub-type numbering. On the host side of an
 * endpoint's veth, ingress carries what the pod sends and egress what it receives. */
#define FS_TO_ENDPOINT 0
#define FS_FROM_ENDPOINT 5

/* TCP flags as in the header's flag byte, with NS (from the data-offset byte) above them. */
#define FS_TCP_FIN 0x001
#define FS_TCP_SYN 0x002
#define FS_TCP_RST 0x004
#define FS_TCP_PSH 0x008
#define FS_TCP_ACK 0x010
#define FS_TCP_URG 0x020
#define FS_TCP_ECE 0x040
#define FS_TCP_CWR 0x080
#define FS_TCP_NS 0x100
/* In struct fs_conn.seen: a packet of this direction was seen (for protocols without flags). */
#define FS_SEEN_PACKET 0x8000

/* Indexes of the per-CPU counters map: what the kernel side sent and could not send. */
#define FS_COUNTER_TRANSPORT_FULL 0 /* ring buffer reserve or perf output failed */
#define FS_COUNTER_RATE_LIMITED 1   /* suppressed by the per-source rate limit */
#define FS_COUNTER_EVENTS 2         /* events offered to the transport (sent or full) */
#define FS_COUNTER_MAX 3

/* struct fs_ipcache_value.flags */
#define FS_IPCACHE_LOCAL_ENDPOINT 0x1 /* the address belongs to an endpoint of this node */

#define FS_COMM_LEN 16

/* ipcache: LPM trie key. prefixlen counts the 32 bits of family and padding, then the address
 * bits: an IPv4 /24 has prefixlen 32 + 24. IPv4 addresses fill addr[0..3]. */
struct fs_ipcache_key {
	__u32 prefixlen;
	__u8 family; /* 4 or 6 */
	__u8 pad[3];
	__u8 addr[16];
};

struct fs_ipcache_value {
	__u32 identity;
	__u32 flags;
};

/* Connection key: the 5-tuple ordered so that both directions find one entry (side a is the
 * smaller address, then the smaller port). ICMP echo uses its identifier as both ports. */
struct fs_conn_key {
	__u8 addr_a[16];
	__u8 addr_b[16];
	__u16 port_a;
	__u16 port_b;
	__u8 proto;
	__u8 family;
	__u8 pad[2];
};

/* Direction index in struct fs_conn: 0 is a -> b, 1 is b -> a. The packets of an established
 * connection read or write the fields up to opener and policy_drop; no time is kept (a clock
 * read costs as much per packet as the rest of the program; the sweep sees activity in the
 * counters). */
struct fs_conn {
	__u64 packets[2]; /* GSO segments counted as packets */
	__u64 bytes[2];   /* at L3 */
	/* The policy decision of the forward direction, per side (0: the egress check at
	 * from-endpoint, 1: the ingress check at to-endpoint), valid while policy_gen equals
	 * the policy_generation map: user space bumps it after every change of policy or
	 * identities, so every forward packet meets the rules in force. */
	__u32 policy_gen[2];
	/* TCP flags (or FS_SEEN_PACKET) seen, indexed direction * 2 + side, where side 0 is
	 * from-endpoint and 1 to-endpoint; an event goes out when a bit is new. */
	__u16 seen[4];
	__u32 retransmits;
	__u8 opener; /* the direction of the connection's first packet */
	__u8 policy_verdict[2]; /* FS_VERDICT_*, 0: not enforced */
	__u8 policy_drop[2];    /* FS_DROP_POLICY_* while policy_verdict is DROPPED */
	__u8 icmp_type; /* ICMP, ICMPv6: the type and code of the first packet */
	__u8 icmp_code;
	__u8 pad[5];
};

/* The connection table: conn_slots, an array, holds each connection in the slot its key
 * hashes to (fs_slot_of in flowscope.bpf.c, mirrored by the collector), unless another
 * connection holds that slot; then it goes to conn_map, an LRU hash of struct fs_conn_key ->
 * struct fs_conn. The verifier inlines an array lookup, where a hash map lookup is a call into
 * the kernel that costs more than the rest of a packet's work together.
 *
 * A slot changes hands only through its claim word, by atomic exchange: the tc programs claim
 * a FREE slot for a new connection (FREE -> BUSY, write conn and key, -> TAKEN), and the
 * collector frees the slot of an idle connection by running fs_free_slot (TAKEN -> BUSY,
 * clear key and conn, -> FREE). User space never writes a slot. */
#define FS_SLOT_FREE 0
#define FS_SLOT_BUSY 1
#define FS_SLOT_TAKEN 2

struct fs_conn_slot {
	__u64 claim; /* FS_SLOT_* */
	struct fs_conn_key key; /* all zero while FREE */
	struct fs_conn conn;
	__u8 pad[16]; /* to 128 bytes: every slot lies alike across cache lines */
};

/* What fs_free_slot frees: the slot at `index` if it still holds `key`. */
struct fs_slot_request {
	__u32 index;
	__u32 pad;
	struct fs_conn_key key;
};

#define FS_CONN_KEY_SIZE 40
#define FS_CONN_SIZE 64
#define FS_CONN_SLOT_SIZE 128
_Static_assert(sizeof(struct fs_conn_key) == FS_CONN_KEY_SIZE, "fs_conn_key size");
_Static_assert(sizeof(struct fs_conn) == FS_CONN_SIZE, "fs_conn size");
_Static_assert(sizeof(struct fs_conn_slot) == FS_CONN_SLOT_SIZE, "fs_conn_slot size");

struct fs_event {
	__u64 ts_ns; /* CLOCK_MONOTONIC */
	__u8 saddr[16];
	__u8 daddr[16];
	__u8 smac[6];
	__u8 dmac[6];
	__u32 src_identity;
	__u32 dst_identity;
	__u32 ifindex;
	__u32 len;         /* L3 bytes of the packet */
	__u32 pid;         /* CONNECT, LISTEN: the process (thread group id) */
	__u32 drop_reason; /* DROP: the kernel's enum skb_drop_reason value;
			    * POLICY_*: FS_DROP_POLICY_* (0 when allowed) */
	__u32 policy_ref;  /* POLICY_VERDICT: struct fs_policy_value.policy_ref (0: none) */
	__u16 sport;
	__u16 dport;
	__u16 tcp_flags;
	__u8 kind;
	__u8 family;
	__u8 proto;
	__u8 obs_point;
	__u8 is_reply; /* 0 or 1; 2 when unknown */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 verdict;    /* POLICY_VERDICT: FS_VERDICT_* */
	__u8 match_type; /* POLICY_VERDICT: Flow.policy_match_type */
	__u8 policy_direction; /* POLICY_*: FS_POLICY_INGRESS or FS_POLICY_EGRESS */
	char comm[FS_COMM_LEN];
};

#endif /* FLOWSCOPE_H */
