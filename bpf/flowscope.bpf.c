/* flowscope's node datapath, loaded by the collector with BCC.
 *
 * - fs_from_ep / fs_to_ep: tc (clsact) programs on the host side of each endpoint's veth,
 *   ingress (from-endpoint) and egress (to-endpoint). They parse L2-L4, keep per-connection
 *   state and counters in the connection table (conn_slots, conn_map: flowscope.h), enforce
 *   network policy on the forward direction of each connection (bpf/policy.h), and send an
 *   event only when something is new: a new connection, the first sight of a TCP flag in a
 *   direction at an observation point, a policy verdict that is new or changed, a packet
 *   dropped by policy.
 * - fs_free_slot: never attached; the collector runs it (BPF_PROG_TEST_RUN) to free the
 *   slot of an idle connection.
 * - Tracepoints: sock:inet_sock_set_state (which process opened or serves a connection),
 *   skb:kfree_skb (packets the kernel drops), tcp:tcp_retransmit_skb (retransmits).
 *
 * Configuration comes as -D defines from the collector:
 *   FS_PERF_EVENTS       send events through a perf buffer instead of the BPF ring buffer
 *   FS_RING_PAGES        ring buffer size in pages (power of two)
 *   FS_CONN_SLOTS        connection slots (a power of two), FS_SLOT_SEED their hash seed
 *   FS_CONN_MAX          conn_map entries (connections whose slot is taken)
 *   FS_POLICY_MAX        policy map entries
 *   FS_RATE_LIMIT        events per second per source address (0: no limit), FS_RATE_BURST
 *   FS_SKB_HEAD_OFF, FS_SKB_NETWORK_HEADER_OFF   struct sk_buff offsets, from BTF
 *   FS_DROP_TC_INGRESS, FS_DROP_TC_EGRESS, FS_DROP_NOT_SPECIFIED
 *                        enum skb_drop_reason values, from tracefs
 * The program never reads a kernel struct through the build-time headers.
 */
#include <uapi/linux/bpf.h>
#include <uapi/linux/if_ether.h>
#include <uapi/linux/in.h>
#include <uapi/linux/ip.h>
#include <uapi/linux/ipv6.h>
#include <uapi/linux/icmp.h>
#include <uapi/linux/icmpv6.h>
#include <uapi/linux/tcp.h>
#include <uapi/linux/udp.h>
#include <uapi/linux/pkt_cls.h>

#include "flowscope.h"
#include "policy.h"

#define FS_NSEC_PER_SEC 1000000000ULL
#define FS_TCP_ESTABLISHED 1
#define FS_TCP_SYN_SENT 2
#define FS_TCP_LISTEN 10
#define FS_IDENTITY_WORLD 2
#define FS_AF_INET 2
#define FS_ICMPV6_ROUTER_SOLICIT 133 /* the first of neighbour discovery's message types */
#define FS_ICMPV6_REDIRECT 137       /* the last */

BPF_LPM_TRIE(ipcache, struct fs_ipcache_key, struct fs_ipcache_value, 65536);
BPF_ARRAY(conn_slots, struct fs_conn_slot, FS_CONN_SLOTS);
BPF_TABLE("lru_hash", struct fs_conn_key, struct fs_conn, conn_map, FS_CONN_MAX);
/* fs_free_slot's request, written by the collector before each run. */
BPF_ARRAY(slot_request, struct fs_slot_request, 1);
BPF_PERCPU_ARRAY(counters, __u64, FS_COUNTER_MAX);
BPF_LPM_TRIE(fs_policy, struct fs_policy_key, struct fs_policy_value, FS_POLICY_MAX);
BPF_HASH(fs_enforcement, __u32, struct fs_enforcement_value, 65536);
/* The policy generation (index 0): bumped by user space after each change of the policy
 * maps or the ipcache; connections re-check their cached decision when it moves. */
BPF_ARRAY(policy_generation, __u32, 1);
/* Never written: it exposes struct fs_event to the loader, which checks its mirror of it. */
BPF_ARRAY(event_layout, struct fs_event, 1);

/* Per-source token buckets: the credit in nanoseconds of event time. */
struct fs_bucket_key {
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
};
struct fs_bucket {
	__u64 credit_ns;
	__u64 last_ns;
};
BPF_TABLE("lru_hash", struct fs_bucket_key, struct fs_bucket, rate_buckets, 16384);

/* Sockets between connect() and ESTABLISHED: the process that connected. */
struct fs_task {
	__u32 pid;
	char comm[FS_COMM_LEN];
};
BPF_TABLE("lru_hash", __u64, struct fs_task, connecting, 16384);

#ifdef FS_PERF_EVENTS
BPF_PERF_OUTPUT(events);
#else
BPF_RINGBUF_OUTPUT(events, FS_RING_PAGES);
#endif

static __always_inline void count(__u32 index)
{
	__u64 *value = counters.lookup(&index);
	if (value)
		*value += 1;
}

static __always_inline void emit(void *ctx, struct fs_event *ev)
{
	count(FS_COUNTER_EVENTS);
#ifdef FS_PERF_EVENTS
	if (events.perf_submit(ctx, ev, sizeof(*ev)) < 0)
		count(FS_COUNTER_TRANSPORT_FULL);
#else
	if (events.ringbuf_output(ev, sizeof(*ev), 0) < 0)
		count(FS_COUNTER_TRANSPORT_FULL);
#endif
}

/* A packet as parsed from the wire. The parser fills the connection key in packet order
 * (side a is the source) and order_key() orders it, recording the packet's direction. */
struct fs_packet {
	struct fs_conn_key key; /* ports: the ICMP echo identifier for echo */
	__u32 l3_len;
	__u32 hdr_len; /* L3 + L4 header bytes, repeated in each GSO segment */
	__u16 sport;   /* event ports: 0 for ICMP */
	__u16 dport;
	__u16 tcp_flags;
	__u8 dir; /* 0: from side a of the key to side b; 1: from b to a */
	__u8 icmp_type;
	__u8 icmp_code;
} __attribute__((aligned(8)));

static __always_inline const __u8 *src_addr(const struct fs_packet *p)
{
	return p->dir ? p->key.addr_b : p->key.addr_a;
}

static __always_inline const __u8 *dst_addr(const struct fs_packet *p)
{
	return p->dir ? p->key.addr_a : p->key.addr_b;
}

/* Token bucket per source address; what it refuses is counted. */
static __always_inline int rate_allows(__u8 family, const __u8 *saddr, __u64 now)
{
#if FS_RATE_LIMIT > 0
	const __u64 cost = FS_NSEC_PER_SEC / FS_RATE_LIMIT;
	const __u64 burst = cost * FS_RATE_BURST;
	struct fs_bucket_key key = {.family = family};
	__builtin_memcpy(key.addr, saddr, 16);
	struct fs_bucket *bucket = rate_buckets.lookup(&key);
	if (!bucket) {
		struct fs_bucket fresh = {.credit_ns = burst - cost, .last_ns = now};
		rate_buckets.update(&key, &fresh);
		return 1;
	}
	__u64 credit = bucket->credit_ns + (now - bucket->last_ns);
	if (credit > burst)
		credit = burst;
	bucket->last_ns = now;
	if (credit < cost) {
		bucket->credit_ns = credit;
		count(FS_COUNTER_RATE_LIMITED);
		return 0;
	}
	bucket->credit_ns = credit - cost;
#endif
	return 1;
}

static __always_inline struct fs_ipcache_value *ipcache_lookup(__u8 family, const __u8 *addr)
{
	struct fs_ipcache_key key = {.family = family};
	key.prefixlen = 32 + (family == 4 ? 32 : 128);
	__builtin_memcpy(key.addr, addr, 16);
	return ipcache.lookup(&key);
}

static __always_inline __u32 identity_of(__u8 family, const __u8 *addr)
{
	struct fs_ipcache_value *value = ipcache_lookup(family, addr);
	return value ? value->identity : FS_IDENTITY_WORLD;
}

static __always_inline void parse_ports(struct fs_packet *p, void *l4, void *end)
{
	struct fs_conn_key *key = &p->key;
	if (key->proto == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;
		if ((void *)(tcp + 1) > end)
			return;
		p->sport = key->port_a = bpf_ntohs(tcp->source);
		p->dport = key->port_b = bpf_ntohs(tcp->dest);
		__u8 *bytes = (__u8 *)tcp;
		p->tcp_flags = bytes[13] | ((bytes[12] & 0x1) << 8);
		p->hdr_len += tcp->doff * 4;
	} else if (key->proto == IPPROTO_UDP) {
		struct udphdr *udp = l4;
		if ((void *)(udp + 1) > end)
			return;
		p->sport = key->port_a = bpf_ntohs(udp->source);
		p->dport = key->port_b = bpf_ntohs(udp->dest);
		p->hdr_len += sizeof(*udp);
	} else if (key->proto == IPPROTO_ICMP || key->proto == IPPROTO_ICMPV6) {
		struct icmphdr *icmp = l4; /* type, code, checksum, echo id: same in ICMPv6 */
		if ((void *)(icmp + 1) > end)
			return;
		p->icmp_type = icmp->type;
		p->icmp_code = icmp->code;
		int echo = key->proto == IPPROTO_ICMP
				   ? (icmp->type == ICMP_ECHO || icmp->type == ICMP_ECHOREPLY)
				   : (icmp->type == ICMPV6_ECHO_REQUEST || icmp->type == ICMPV6_ECHO_REPLY);
		if (echo)
			key->port_a = key->port_b = bpf_ntohs(icmp->un.echo.id);
		p->hdr_len += sizeof(*icmp);
	}
}

/* Parse the IP header of the packet's family (p->key.family, set by the caller) at l3; 0 when
 * it is truncated. Sets *l4_off to where the L4 header starts, 0 when there is none to parse
 * (a later fragment). */
static __always_inline int parse_ip(struct fs_packet *p, void *l3, void *end, __u32 *l4_off)
{
	struct fs_conn_key *key = &p->key;
	if (key->family == 4) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > end || ip->ihl < 5)
			return 0;
		key->proto = ip->protocol;
		__builtin_memcpy(key->addr_a, &ip->saddr, 4);
		__builtin_memcpy(key->addr_b, &ip->daddr, 4);
		p->l3_len = bpf_ntohs(ip->tot_len);
		p->hdr_len = ip->ihl * 4;
		*l4_off = ip->frag_off & bpf_htons(0x1fff) ? 0 : ip->ihl * 4;
		return 1;
	}
	struct ipv6hdr *ip6 = l3;
	if ((void *)(ip6 + 1) > end)
		return 0;
	key->proto = ip6->nexthdr;
	__builtin_memcpy(key->addr_a, &ip6->saddr, 16);
	__builtin_memcpy(key->addr_b, &ip6->daddr, 16);
	p->l3_len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
	p->hdr_len = sizeof(*ip6);
	*l4_off = sizeof(*ip6);
	return 1;
}

/* Order the key, filled in packet order, so that both directions share it (side a is the
 * smaller address, then the smaller port), and record the packet's direction. */
static __always_inline void order_key(struct fs_packet *p)
{
	struct fs_conn_key *key = &p->key;
	__u64 *a = (__u64 *)key->addr_a, *b = (__u64 *)key->addr_b;
	__u64 a_hi = a[0], b_hi = b[0], a_lo = a[1], b_lo = b[1];
	p->dir = a_hi > b_hi || (a_hi == b_hi && (a_lo > b_lo ||
		 (a_lo == b_lo && key->port_a > key->port_b)));
	if (p->dir) {
		a[0] = b_hi;
		a[1] = b_lo;
		b[0] = a_hi;
		b[1] = a_lo;
		__u16 port = key->port_a;
		key->port_a = key->port_b;
		key->port_b = port;
	}
}

#define FS_KEY_WORDS (sizeof(struct fs_conn_key) / 8)

/* The slot of a key: each 64-bit word of the key, its halves folded and the seed mixed in,
 * times an odd constant of its own; the sum, halves folded, modulo the slot count. The
 * collector computes the same (collector/conntable.py). */
static __always_inline __u32 fs_slot_of(const struct fs_conn_key *key)
{
	const __u64 factors[FS_KEY_WORDS] = {0x9e3779b97f4a7c15ULL, 0xc2b2ae3d27d4eb4fULL,
					     0x165667b19e3779f9ULL, 0xd6e8feb86659fd93ULL,
					     0xff51afd7ed558ccdULL};
	const __u64 *words = (const __u64 *)key;
	__u64 sum = 0;
#pragma unroll
	for (int i = 0; i < FS_KEY_WORDS; i++)
		sum += (words[i] ^ (words[i] >> 32) ^ FS_SLOT_SEED) * factors[i];
	return (sum ^ (sum >> 32)) & (FS_CONN_SLOTS - 1);
}

static __always_inline int same_key(const struct fs_conn_key *a, const struct fs_conn_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4];
}

/* Write a key into a slot; its last word, which holds the family, goes last so that a reader
 * never matches a key that is half written (claim) or half cleared (free, which clears that
 * word first). */
static __always_inline void write_key(struct fs_conn_key *to, const struct fs_conn_key *from)
{
	__u64 *x = (__u64 *)to;
	const __u64 *y = (const __u64 *)from;
	x[0] = y[0];
	x[1] = y[1];
	x[2] = y[2];
	x[3] = y[3];
	x[4] = y[4];
}

/* The entry of a packet's connection: its slot when the slot holds it, else conn_map's. */
static __always_inline struct fs_conn *find_connection(struct fs_conn_slot *slot,
						       struct fs_packet *p)
{
	if (__builtin_expect(same_key(&slot->key, &p->key), 1))
		return &slot->conn;
	return conn_map.lookup(&p->key);
}

/* A new connection's entry, in its slot if the slot is free, else in conn_map. The packet's
 * sender opened the connection unless the packet is a SYN-ACK; an ICMP connection keeps the
 * type and code of this packet for its records. *is_new tells whether this
 * packet made the entry: another CPU may have made it meanwhile, with the same key (then this
 * packet uses that entry; a connection whose first packets race on two CPUs between a claim
 * and its key being written can end with an entry in both places, which the sweep reports
 * as two records). */
static __always_inline struct fs_conn *open_connection(struct fs_conn_slot *slot,
						       struct fs_packet *p, int *is_new)
{
	__u8 syn_ack = (p->tcp_flags & (FS_TCP_SYN | FS_TCP_ACK)) == (FS_TCP_SYN | FS_TCP_ACK);
	struct fs_conn fresh = {.opener = p->dir ^ syn_ack, .icmp_type = p->icmp_type,
				.icmp_code = p->icmp_code};
	if (slot->claim == FS_SLOT_FREE &&
	    __sync_val_compare_and_swap(&slot->claim, FS_SLOT_FREE, FS_SLOT_BUSY) ==
		    FS_SLOT_FREE) {
		slot->conn = fresh;
		write_key(&slot->key, &p->key);
		__sync_lock_test_and_set(&slot->claim, FS_SLOT_TAKEN);
		*is_new = 1;
		return &slot->conn;
	}
	if (same_key(&slot->key, &p->key))
		return &slot->conn;
	*is_new = conn_map.insert(&p->key, &fresh) == 0;
	return conn_map.lookup(&p->key);
}

/* The fields every packet event carries; the caller sets the kind and its own fields. */
static __always_inline void packet_event(struct fs_event *ev, struct __sk_buff *skb,
					 const struct fs_packet *p, __u8 point, __u64 now)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) <= end) {
		__builtin_memcpy(ev->smac, eth->h_source, 6);
		__builtin_memcpy(ev->dmac, eth->h_dest, 6);
	}
	ev->ts_ns = now;
	ev->family = p->key.family;
	ev->proto = p->key.proto;
	__builtin_memcpy(ev->saddr, src_addr(p), 16);
	__builtin_memcpy(ev->daddr, dst_addr(p), 16);
	ev->sport = p->sport;
	ev->dport = p->dport;
	ev->tcp_flags = p->tcp_flags;
	ev->icmp_type = p->icmp_type;
	ev->icmp_code = p->icmp_code;
	ev->len = p->l3_len;
	ev->obs_point = point;
	ev->ifindex = skb->ifindex;
	ev->src_identity = identity_of(p->key.family, src_addr(p));
	ev->dst_identity = identity_of(p->key.family, dst_addr(p));
}

/* One policy map lookup: the longest match for this remote identity (0: any remote). */
static __always_inline struct fs_policy_value *policy_lookup(__u32 endpoint, __u32 remote,
							     __u8 direction,
							     const struct fs_packet *p)
{
	struct fs_policy_key key = {
		.prefixlen = FS_POLICY_PREFIX_FULL,
		.endpoint_identity = bpf_htonl(endpoint),
		.remote_identity = bpf_htonl(remote),
		.direction = direction,
		.protocol = p->key.proto,
		.dport = bpf_htons(p->dport),
	};
	return fs_policy.lookup(&key);
}

struct fs_decision {
	__u32 policy_ref;
	__u8 verdict;  /* FS_VERDICT_*, 0: the endpoint does not enforce this direction */
	__u8 match_type;
	__u8 drop;     /* FS_DROP_POLICY_* when the rules deny (also in audit mode) */
};

/* The decision procedure of bpf/policy.h, steps 1 to 5. */
static __always_inline void decide(struct fs_decision *d, __u32 endpoint, __u32 remote,
				   __u8 direction, const struct fs_packet *p)
{
	struct fs_enforcement_value *e = fs_enforcement.lookup(&endpoint);
	__u32 enforce = direction == FS_POLICY_INGRESS ? FS_ENFORCE_INGRESS : FS_ENFORCE_EGRESS;
	if (!e || !(e->flags & enforce))
		return;
	struct fs_policy_value *r1 = policy_lookup(endpoint, remote, direction, p);
	struct fs_policy_value *r0 = policy_lookup(endpoint, 0, direction, p);
	struct fs_policy_value *chosen;
	if (r1 && r1->verdict == FS_POLICY_DENY)
		chosen = r1;
	else if (r0 && r0->verdict == FS_POLICY_DENY)
		chosen = r0;
	else
		chosen = r1 ? r1 : r0;
	if (!chosen) {
		__u32 audit = direction == FS_POLICY_INGRESS ? FS_AUDIT_INGRESS : FS_AUDIT_EGRESS;
		d->verdict = e->flags & audit ? FS_VERDICT_AUDIT : FS_VERDICT_DROPPED;
		d->drop = FS_DROP_POLICY_DENIED;
		return;
	}
	d->policy_ref = chosen->policy_ref;
	d->match_type = chosen->match_type;
	if (chosen->verdict == FS_POLICY_ALLOW) {
		d->verdict = FS_VERDICT_FORWARDED;
		return;
	}
	d->verdict = chosen->flags & FS_POLICY_AUDIT ? FS_VERDICT_AUDIT : FS_VERDICT_DROPPED;
	d->drop = FS_DROP_POLICY_DENY;
}

/* Neighbour discovery never meets policy: without it no IPv6 traffic flows at all. */
static __always_inline int is_neighbour_discovery(const struct fs_packet *p)
{
	return p->key.proto == IPPROTO_ICMPV6 && p->icmp_type >= FS_ICMPV6_ROUTER_SOLICIT &&
	       p->icmp_type <= FS_ICMPV6_REDIRECT;
}

/* Policy on a forward packet at one side (0: the egress check of the sending endpoint at
 * from-endpoint; 1: the ingress check of the receiving one at to-endpoint) whose connection
 * has no decision for `generation` at that side yet, or one that drops: decide when needed,
 * keep the decision in the connection, report a verdict that is new or changed and report
 * the drop. Returns TC_ACT_SHOT for a packet the policy drops. */
static __always_inline int enforce(struct __sk_buff *skb, struct fs_conn *conn,
				   const struct fs_packet *p, __u8 point, __u8 side,
				   __u32 generation)
{
	__u8 family = p->key.family;
	__u8 direction = side == 0 ? FS_POLICY_EGRESS : FS_POLICY_INGRESS;
	__u8 verdict = conn->policy_verdict[side];
	struct fs_decision d = {};
	int report = 0;
	if (conn->policy_gen[side] != generation) {
		__u32 src_identity = identity_of(family, src_addr(p));
		__u32 dst_identity = identity_of(family, dst_addr(p));
		if (side == 0)
			decide(&d, src_identity, dst_identity, direction, p);
		else
			decide(&d, dst_identity, src_identity, direction, p);
		conn->policy_gen[side] = generation;
		report = d.verdict && d.verdict != verdict;
		verdict = conn->policy_verdict[side] = d.verdict;
		conn->policy_drop[side] = d.drop;
	}
	if (!report && verdict != FS_VERDICT_DROPPED)
		return TC_ACT_OK;
	__u64 now = bpf_ktime_get_ns();
	if (rate_allows(family, src_addr(p), now)) {
		struct fs_event ev = {};
		packet_event(&ev, skb, p, point, now);
		ev.policy_direction = direction;
		ev.drop_reason = conn->policy_drop[side];
		ev.is_reply = 2;
		if (report) {
			ev.kind = FS_EVENT_POLICY_VERDICT;
			ev.verdict = d.verdict;
			ev.match_type = d.match_type;
			ev.policy_ref = d.policy_ref;
			emit(skb, &ev);
		}
		if (verdict == FS_VERDICT_DROPPED) {
			ev.kind = FS_EVENT_POLICY_DROP;
			ev.verdict = FS_VERDICT_DROPPED;
			emit(skb, &ev);
		}
	}
	return verdict == FS_VERDICT_DROPPED ? TC_ACT_SHOT : TC_ACT_OK;
}

/* The trace event of a packet that opened a connection or showed a new TCP flag. */
static __always_inline void trace(struct __sk_buff *skb, const struct fs_packet *p, __u8 point,
				  __u8 is_reply)
{
	/* Reading the clock costs as much as the rest of the program: only events do. */
	__u64 now = bpf_ktime_get_ns();
	if (!rate_allows(p->key.family, src_addr(p), now))
		return;
	struct fs_event ev = {};
	packet_event(&ev, skb, p, point, now);
	ev.kind = FS_EVENT_TRACE;
	ev.is_reply = is_reply;
	emit(skb, &ev);
}

/* The work for each packet of one IP family (a constant in each of the two copies the
 * compiler makes). A packet of an established connection costs a parse, the hash of its key,
 * an inlined array lookup of its slot, a comparison with the policy generation in the forward
 * direction, and the counters; what happens once per connection, flag or policy change is
 * marked unlikely so that the compiler keeps it out of that path. */
static __always_inline int observe_ip(struct __sk_buff *skb, __u8 point, __u8 family)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct fs_packet p = {.key.family = family};
	__u32 l4_off;
	void *l3 = (void *)(eth + 1);
	if (l3 > end || !parse_ip(&p, l3, end, &l4_off))
		return TC_ACT_OK;
	if (l4_off)
		parse_ports(&p, l3 + l4_off, end);
	order_key(&p);
	__u8 dir = p.dir;

	__u32 index = fs_slot_of(&p.key);
	struct fs_conn_slot *slot = conn_slots.lookup(&index);
	if (!slot)
		return TC_ACT_OK;
	int is_new = 0;
	struct fs_conn *conn = find_connection(slot, &p);
	if (__builtin_expect(!conn, 0)) {
		conn = open_connection(slot, &p, &is_new);
		if (!conn)
			return TC_ACT_OK;
	}
	const __u8 side = point == FS_FROM_ENDPOINT ? 0 : 1;
	__u8 is_reply = dir != conn->opener;
	/* Replies pass through the connection table; the forward direction meets policy on
	 * every packet (a revoked allow cuts an established connection): while the
	 * connection's decision is current and lets the packet pass, that is a comparison. */
	if (!is_reply) {
		__u32 zero = 0;
		__u32 *generation = policy_generation.lookup(&zero);
		if (__builtin_expect(generation && (conn->policy_gen[side] != *generation ||
						   conn->policy_verdict[side] == FS_VERDICT_DROPPED),
				     0) &&
		    !is_neighbour_discovery(&p) &&
		    enforce(skb, conn, &p, point, side, *generation) == TC_ACT_SHOT)
			return TC_ACT_SHOT;
	}
	/* A packet of a direction is counted once on this node: where it leaves its endpoint,
	 * or where it reaches one when the sender is not a local endpoint. Plain adds: the
	 * packets of one direction of a connection leave their sender one at a time (TCP under
	 * its socket lock), and atomic adds would cost as much as the rest of the program. */
	if (side == 0 || !conn->seen[dir * 2]) {
		__u32 segs = skb->gso_segs > 1 ? skb->gso_segs : 1;
		conn->packets[dir] += segs;
		conn->bytes[dir] += (skb->len - sizeof(*eth)) + (__u64)(segs - 1) * p.hdr_len;
	}
	__u16 seen_bits = p.key.proto == IPPROTO_TCP ? p.tcp_flags : FS_SEEN_PACKET;
	__u16 *seen = &conn->seen[(dir * 2 + side) & 3];
	__u16 new_bits = seen_bits & ~*seen;
	if (new_bits)
		*seen |= seen_bits;
	if (__builtin_expect(is_new || new_bits, 0))
		trace(skb, &p, point, is_reply);
	return TC_ACT_OK;
}

static __always_inline int observe(struct __sk_buff *skb, __u8 point)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return TC_ACT_OK;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return observe_ip(skb, point, 4);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return observe_ip(skb, point, 6);
	return TC_ACT_OK;
}

int fs_from_ep(struct __sk_buff *skb)
{
	return observe(skb, FS_FROM_ENDPOINT);
}

int fs_to_ep(struct __sk_buff *skb)
{
	return observe(skb, FS_TO_ENDPOINT);
}

/* Free the slot of slot_request if it still holds the request's key: 1 when freed. The
 * collector runs this after its sweep found the connection idle. A packet of the connection
 * that is processed meanwhile may still add to counters that are being cleared; a connection
 * that conn_map holds meets the same when the collector deletes it. */
int fs_free_slot(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct fs_slot_request *request = slot_request.lookup(&zero);
	if (!request)
		return 0;
	__u32 index = request->index;
	struct fs_conn_slot *slot = conn_slots.lookup(&index);
	if (!slot || __sync_val_compare_and_swap(&slot->claim, FS_SLOT_TAKEN, FS_SLOT_BUSY) !=
			     FS_SLOT_TAKEN)
		return 0;
	if (!same_key(&slot->key, &request->key)) {
		__sync_lock_test_and_set(&slot->claim, FS_SLOT_TAKEN);
		return 0;
	}
	__u64 *key = (__u64 *)&slot->key;
	key[FS_KEY_WORDS - 1] = 0; /* the family first: no reader matches the key from here on */
	key[0] = key[1] = key[2] = key[3] = 0;
	struct fs_conn cleared = {};
	slot->conn = cleared;
	__sync_lock_test_and_set(&slot->claim, FS_SLOT_FREE);
	return 1;
}

/* Process attribution. A client's connect() moves its socket to SYN_SENT in the process's
 * context, before the source port is chosen: remember the process by socket, and report it
 * with the full tuple when the socket becomes ESTABLISHED (in softirq context, where the
 * current task means nothing). A server's listen() moves its socket to LISTEN in the
 * listening process: report that, and user space matches accepted connections by port. */
TRACEPOINT_PROBE(sock, inet_sock_set_state)
{
	if (args->protocol != IPPROTO_TCP)
		return 0;
	__u64 sk = (__u64)args->skaddr;
	if (args->newstate == FS_TCP_SYN_SENT) {
		struct fs_task task = {.pid = bpf_get_current_pid_tgid() >> 32};
		bpf_get_current_comm(task.comm, sizeof(task.comm));
		connecting.update(&sk, &task);
		return 0;
	}
	struct fs_event ev = {};
	if (args->newstate == FS_TCP_LISTEN) {
		ev.kind = FS_EVENT_LISTEN;
		ev.pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(ev.comm, sizeof(ev.comm));
	} else if (args->oldstate == FS_TCP_SYN_SENT) {
		struct fs_task *task = connecting.lookup(&sk);
		if (!task)
			return 0;
		ev.kind = FS_EVENT_CONNECT;
		ev.pid = task->pid;
		__builtin_memcpy(ev.comm, task->comm, sizeof(ev.comm));
		connecting.delete(&sk);
		if (args->newstate != FS_TCP_ESTABLISHED)
			return 0;
	} else {
		return 0;
	}
	ev.ts_ns = bpf_ktime_get_ns();
	ev.proto = IPPROTO_TCP;
	ev.sport = args->sport;
	ev.dport = args->dport;
	if (args->family == FS_AF_INET) {
		ev.family = 4;
		__builtin_memcpy(ev.saddr, args->saddr, 4);
		__builtin_memcpy(ev.daddr, args->daddr, 4);
	} else {
		ev.family = 6;
		__builtin_memcpy(ev.saddr, args->saddr_v6, 16);
		__builtin_memcpy(ev.daddr, args->daddr_v6, 16);
	}
	emit(args, &ev);
	return 0;
}

TRACEPOINT_PROBE(tcp, tcp_retransmit_skb)
{
	struct fs_packet p = {.key.proto = IPPROTO_TCP, .key.port_a = args->sport,
			      .key.port_b = args->dport};
	if (args->family == FS_AF_INET) {
		p.key.family = 4;
		__builtin_memcpy(p.key.addr_a, args->saddr, 4);
		__builtin_memcpy(p.key.addr_b, args->daddr, 4);
	} else {
		p.key.family = 6;
		__builtin_memcpy(p.key.addr_a, args->saddr_v6, 16);
		__builtin_memcpy(p.key.addr_b, args->daddr_v6, 16);
	}
	order_key(&p);
	__u32 index = fs_slot_of(&p.key);
	struct fs_conn_slot *slot = conn_slots.lookup(&index);
	struct fs_conn *conn = slot ? find_connection(slot, &p) : 0;
	if (conn)
		__sync_fetch_and_add(&conn->retransmits, 1);
	return 0;
}

/* The tracepoint's reason field has this type; its values come from tracefs at load time. */
enum skb_drop_reason { FS_SKB_DROP_REASON_FROM_TRACEFS };

/* Packets the kernel drops, for endpoints of this node. Drops by tc verdicts are reported
 * by the tc programs themselves and skipped here, and so are frees without a reason
 * (NOT_SPECIFIED): the kernel's catch-all, mostly benign (late segments of a closed socket). */
TRACEPOINT_PROBE(skb, kfree_skb)
{
	__u32 reason = args->reason;
	if (reason == FS_DROP_TC_INGRESS || reason == FS_DROP_TC_EGRESS ||
	    reason == FS_DROP_NOT_SPECIFIED)
		return 0;
	__u16 eth_proto = args->protocol;
	if (eth_proto != ETH_P_IP && eth_proto != ETH_P_IPV6)
		return 0;
	char *skb = (char *)args->skbaddr;
	char *head;
	__u16 network_header;
	if (bpf_probe_read_kernel(&head, sizeof(head), skb + FS_SKB_HEAD_OFF) ||
	    bpf_probe_read_kernel(&network_header, sizeof(network_header),
				  skb + FS_SKB_NETWORK_HEADER_OFF))
		return 0;
	/* Copies of the headers: an IPv6 header is the longest L3 header parsed, a TCP header
	 * the longest L4 header. */
	__u8 l3[sizeof(struct ipv6hdr)] = {};
	__u8 l4[sizeof(struct tcphdr)] = {};
	char *l3_start = head + network_header;
	if (bpf_probe_read_kernel(l3, sizeof(l3), l3_start))
		return 0;
	/* dir 0: the key stays in packet order, side a is the source */
	struct fs_packet p = {.key.family = eth_proto == ETH_P_IP ? 4 : 6};
	__u32 l4_off;
	if (!parse_ip(&p, l3, l3 + sizeof(l3), &l4_off))
		return 0;
	if (l4_off && !bpf_probe_read_kernel(l4, sizeof(l4), l3_start + (l4_off & 0xff)))
		parse_ports(&p, l4, l4 + sizeof(l4));
	__u8 family = p.key.family;
	struct fs_ipcache_value *src = ipcache_lookup(family, p.key.addr_a);
	struct fs_ipcache_value *dst = ipcache_lookup(family, p.key.addr_b);
	int local = (src && src->flags & FS_IPCACHE_LOCAL_ENDPOINT) ||
		    (dst && dst->flags & FS_IPCACHE_LOCAL_ENDPOINT);
	__u64 now = bpf_ktime_get_ns();
	if (!local || !rate_allows(family, p.key.addr_a, now))
		return 0;
	struct fs_event ev = {};
	ev.ts_ns = now;
	ev.kind = FS_EVENT_DROP;
	ev.family = family;
	ev.proto = p.key.proto;
	__builtin_memcpy(ev.saddr, p.key.addr_a, 16);
	__builtin_memcpy(ev.daddr, p.key.addr_b, 16);
	ev.sport = p.sport;
	ev.dport = p.dport;
	ev.tcp_flags = p.tcp_flags;
	ev.icmp_type = p.icmp_type;
	ev.icmp_code = p.icmp_code;
	ev.len = p.l3_len;
	ev.is_reply = 2;
	ev.drop_reason = reason;
	ev.src_identity = src ? src->identity : FS_IDENTITY_WORLD;
	ev.dst_identity = dst ? dst->identity : FS_IDENTITY_WORLD;
	emit(args, &ev);
	return 0;
}
