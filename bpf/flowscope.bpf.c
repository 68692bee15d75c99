/* flowscope's node datapath, loaded by the collector with BCC.
 *
 * - fs_from_ep / fs_to_ep: tc (clsact) programs on the host side of each endpoint's veth,
 *   ingress (from-endpoint) and egress (to-endpoint). They parse L2-L4, keep per-connection
 *   state and counters in conn_map, enforce network policy on the forward direction of each
 *   connection (bpf/policy.h), and send an event only when something is new: a new
 *   connection, the first sight of a TCP flag in a direction at an observation point, a
 *   policy verdict that is new or changed, a packet dropped by policy.
 * - Tracepoints: sock:inet_sock_set_state (which process opened or serves a connection),
 *   skb:kfree_skb (packets the kernel drops), tcp:tcp_retransmit_skb (retransmits).
 *
 * Configuration comes as -D defines from the collector:
 *   FS_PERF_EVENTS       send events through a perf buffer instead of the BPF ring buffer
 *   FS_RING_PAGES        ring buffer size in pages (power of two)
 *   FS_CONN_MAX          connection map entries
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
BPF_TABLE("lru_hash", struct fs_conn_key, struct fs_conn, conn_map, FS_CONN_MAX);
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

/* A packet's L3/L4 facts, as parsed from the wire. */
struct fs_packet {
	__u8 saddr[16] __attribute__((aligned(8)));
	__u8 daddr[16] __attribute__((aligned(8)));
	__u16 sport; /* event ports: 0 for ICMP */
	__u16 dport;
	__u16 key_sport; /* connection key ports: the ICMP echo identifier for echo */
	__u16 key_dport;
	__u16 tcp_flags;
	__u8 family;
	__u8 proto;
	__u8 icmp_type;
	__u8 icmp_code;
	__u32 l3_len;
	__u32 hdr_len; /* L3 + L4 header bytes, repeated in each GSO segment */
};

static __always_inline void parse_ports(struct fs_packet *p, void *l4, void *end)
{
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;
		if ((void *)(tcp + 1) > end)
			return;
		p->sport = p->key_sport = bpf_ntohs(tcp->source);
		p->dport = p->key_dport = bpf_ntohs(tcp->dest);
		__u8 *bytes = (__u8 *)tcp;
		p->tcp_flags = bytes[13] | ((bytes[12] & 0x1) << 8);
		p->hdr_len += tcp->doff * 4;
	} else if (p->proto == IPPROTO_UDP) {
		struct udphdr *udp = l4;
		if ((void *)(udp + 1) > end)
			return;
		p->sport = p->key_sport = bpf_ntohs(udp->source);
		p->dport = p->key_dport = bpf_ntohs(udp->dest);
		p->hdr_len += sizeof(*udp);
	} else if (p->proto == IPPROTO_ICMP || p->proto == IPPROTO_ICMPV6) {
		struct icmphdr *icmp = l4; /* type, code, checksum, echo id: same in ICMPv6 */
		if ((void *)(icmp + 1) > end)
			return;
		p->icmp_type = icmp->type;
		p->icmp_code = icmp->code;
		int echo = p->proto == IPPROTO_ICMP
				   ? (icmp->type == ICMP_ECHO || icmp->type == ICMP_ECHOREPLY)
				   : (icmp->type == ICMPV6_ECHO_REQUEST || icmp->type == ICMPV6_ECHO_REPLY);
		if (echo)
			p->key_sport = p->key_dport = bpf_ntohs(icmp->un.echo.id);
		p->hdr_len += sizeof(*icmp);
	}
}

/* Parse an IPv4 or IPv6 header at l3; 0 when the packet is neither or is truncated. Sets
 * *l4_off to where the L4 header starts, 0 when there is none to parse (a later fragment). */
static __always_inline int parse_ip(struct fs_packet *p, __u16 eth_proto, void *l3, void *end,
				    __u32 *l4_off)
{
	if (eth_proto == ETH_P_IP) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > end || ip->ihl < 5)
			return 0;
		p->family = 4;
		p->proto = ip->protocol;
		__builtin_memcpy(p->saddr, &ip->saddr, 4);
		__builtin_memcpy(p->daddr, &ip->daddr, 4);
		p->l3_len = bpf_ntohs(ip->tot_len);
		p->hdr_len = ip->ihl * 4;
		*l4_off = ip->frag_off & bpf_htons(0x1fff) ? 0 : ip->ihl * 4;
		return 1;
	}
	if (eth_proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = l3;
		if ((void *)(ip6 + 1) > end)
			return 0;
		p->family = 6;
		p->proto = ip6->nexthdr;
		__builtin_memcpy(p->saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->daddr, &ip6->daddr, 16);
		p->l3_len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
		p->hdr_len = sizeof(*ip6);
		*l4_off = sizeof(*ip6);
		return 1;
	}
	return 0;
}

/* Order the tuple so both directions share a key; returns the packet's direction. */
static __always_inline __u8 conn_key_of(struct fs_conn_key *key, const struct fs_packet *p)
{
	__u64 s_hi = *(__u64 *)p->saddr, d_hi = *(__u64 *)p->daddr;
	__u64 s_lo = *(__u64 *)(p->saddr + 8), d_lo = *(__u64 *)(p->daddr + 8);
	__u8 dir = s_hi > d_hi || (s_hi == d_hi && (s_lo > d_lo ||
		   (s_lo == d_lo && p->key_sport > p->key_dport)));
	key->proto = p->proto;
	key->family = p->family;
	if (dir == 0) {
		__builtin_memcpy(key->addr_a, p->saddr, 16);
		__builtin_memcpy(key->addr_b, p->daddr, 16);
		key->port_a = p->key_sport;
		key->port_b = p->key_dport;
	} else {
		__builtin_memcpy(key->addr_a, p->daddr, 16);
		__builtin_memcpy(key->addr_b, p->saddr, 16);
		key->port_a = p->key_dport;
		key->port_b = p->key_sport;
	}
	return dir;
}

/* The fields every packet event carries; the caller sets the kind and its own fields. */
static __always_inline void packet_event(struct fs_event *ev, const struct fs_packet *p,
					 const struct ethhdr *eth, struct __sk_buff *skb,
					 __u8 point, __u64 now)
{
	ev->ts_ns = now;
	ev->family = p->family;
	ev->proto = p->proto;
	__builtin_memcpy(ev->saddr, p->saddr, 16);
	__builtin_memcpy(ev->daddr, p->daddr, 16);
	__builtin_memcpy(ev->smac, eth->h_source, 6);
	__builtin_memcpy(ev->dmac, eth->h_dest, 6);
	ev->sport = p->sport;
	ev->dport = p->dport;
	ev->tcp_flags = p->tcp_flags;
	ev->icmp_type = p->icmp_type;
	ev->icmp_code = p->icmp_code;
	ev->len = p->l3_len;
	ev->obs_point = point;
	ev->ifindex = skb->ifindex;
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
		.protocol = p->proto,
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
	return p->proto == IPPROTO_ICMPV6 && p->icmp_type >= FS_ICMPV6_ROUTER_SOLICIT &&
	       p->icmp_type <= FS_ICMPV6_REDIRECT;
}

/* Policy on a forward packet at one side: the egress check of the sending endpoint
 * (from-endpoint) or the ingress check of the receiving one (to-endpoint). The decision is
 * cached in the connection for the current policy generation; a new or changed verdict is
 * reported. Returns TC_ACT_SHOT for a packet the policy drops (reported as a drop). */
static __always_inline int enforce(struct __sk_buff *skb, struct fs_conn *conn,
				   const struct fs_packet *p, const struct ethhdr *eth,
				   __u8 point, __u8 side)
{
	__u32 zero = 0;
	__u32 *generation = policy_generation.lookup(&zero);
	if (!generation || is_neighbour_discovery(p))
		return TC_ACT_OK;
	__u8 direction = side == 0 ? FS_POLICY_EGRESS : FS_POLICY_INGRESS;
	__u8 verdict = conn->policy_verdict[side & 1];
	__u8 drop = conn->policy_drop[side & 1];
	__u32 src_identity = 0, dst_identity = 0;
	struct fs_decision d = {};
	int report = 0;
	if (conn->policy_gen[side & 1] != *generation) {
		src_identity = identity_of(p->family, p->saddr);
		dst_identity = identity_of(p->family, p->daddr);
		if (side == 0)
			decide(&d, src_identity, dst_identity, direction, p);
		else
			decide(&d, dst_identity, src_identity, direction, p);
		conn->policy_gen[side & 1] = *generation;
		report = d.verdict && d.verdict != verdict;
		verdict = conn->policy_verdict[side & 1] = d.verdict;
		drop = conn->policy_drop[side & 1] = d.drop;
	}
	if (!report && verdict != FS_VERDICT_DROPPED)
		return TC_ACT_OK;
	__u64 now = bpf_ktime_get_ns();
	if (rate_allows(p->family, p->saddr, now)) {
		struct fs_event ev = {};
		packet_event(&ev, p, eth, skb, point, now);
		ev.policy_direction = direction;
		ev.drop_reason = drop;
		ev.is_reply = 2;
		if (!src_identity) {
			src_identity = identity_of(p->family, p->saddr);
			dst_identity = identity_of(p->family, p->daddr);
		}
		ev.src_identity = src_identity;
		ev.dst_identity = dst_identity;
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

static __always_inline int observe(struct __sk_buff *skb, __u8 point)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return TC_ACT_OK;
	struct fs_packet p = {};
	__u32 l4_off;
	void *l3 = (void *)(eth + 1);
	if (!parse_ip(&p, bpf_ntohs(eth->h_proto), l3, end, &l4_off))
		return TC_ACT_OK;
	if (l4_off)
		parse_ports(&p, l3 + l4_off, end);

	__u32 segs = skb->gso_segs > 1 ? skb->gso_segs : 1;
	__u64 bytes = (skb->len - sizeof(*eth)) + (__u64)(segs - 1) * p.hdr_len;
	__u8 side = point == FS_FROM_ENDPOINT ? 0 : 1;
	__u16 seen_bits = p.proto == IPPROTO_TCP ? p.tcp_flags : FS_SEEN_PACKET;

	struct fs_conn_key key = {};
	__u8 dir = conn_key_of(&key, &p);
	int is_new = 0;
	struct fs_conn *conn = conn_map.lookup(&key);
	if (!conn) {
		/* A connection first seen at SYN-ACK was opened by the other side. */
		__u8 opener = p.tcp_flags & FS_TCP_SYN && p.tcp_flags & FS_TCP_ACK ? !dir : dir;
		struct fs_conn fresh = {.first_ns = bpf_ktime_get_ns(), .opener = opener};
		conn_map.insert(&key, &fresh);
		conn = conn_map.lookup(&key);
		if (!conn)
			return TC_ACT_OK;
		is_new = 1;
	}
	__u8 is_reply = dir != conn->opener;
	/* Replies pass through the connection map; the forward direction meets policy on every
	 * packet, so a revoked allow cuts an established connection. */
	if (!is_reply && enforce(skb, conn, &p, eth, point, side) == TC_ACT_SHOT)
		return TC_ACT_SHOT;
	/* A packet of a direction is counted once on this node: where it leaves its endpoint,
	 * or where it reaches one when the sender is not a local endpoint. Plain adds: the
	 * packets of one direction of a connection leave their sender one at a time (TCP under
	 * its socket lock), and atomic adds would cost as much as the rest of the program. */
	if (side == 0 || !conn->seen[dir * 2]) {
		conn->packets[dir] += segs;
		conn->bytes[dir] += bytes;
	}
	__u16 *seen = &conn->seen[(dir * 2 + side) & 3];
	__u16 new_bits = seen_bits & ~*seen;
	if (new_bits)
		*seen |= seen_bits;

	if (!is_new && !new_bits)
		return TC_ACT_OK;
	/* Reading the clock costs as much as the rest of the program: only events do. */
	__u64 now = bpf_ktime_get_ns();
	if (!rate_allows(p.family, p.saddr, now))
		return TC_ACT_OK;

	struct fs_event ev = {};
	packet_event(&ev, &p, eth, skb, point, now);
	ev.kind = FS_EVENT_TRACE;
	ev.is_reply = is_reply;
	ev.src_identity = identity_of(p.family, p.saddr);
	ev.dst_identity = identity_of(p.family, p.daddr);
	emit(skb, &ev);
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
	struct fs_packet p = {.proto = IPPROTO_TCP, .key_sport = args->sport,
			      .key_dport = args->dport};
	if (args->family == FS_AF_INET) {
		p.family = 4;
		__builtin_memcpy(p.saddr, args->saddr, 4);
		__builtin_memcpy(p.daddr, args->daddr, 4);
	} else {
		p.family = 6;
		__builtin_memcpy(p.saddr, args->saddr_v6, 16);
		__builtin_memcpy(p.daddr, args->daddr_v6, 16);
	}
	struct fs_conn_key key = {};
	conn_key_of(&key, &p);
	struct fs_conn *conn = conn_map.lookup(&key);
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
	struct fs_packet p = {};
	__u32 l4_off;
	if (!parse_ip(&p, eth_proto, l3, l3 + sizeof(l3), &l4_off))
		return 0;
	if (l4_off && !bpf_probe_read_kernel(l4, sizeof(l4), l3_start + (l4_off & 0xff)))
		parse_ports(&p, l4, l4 + sizeof(l4));
	struct fs_ipcache_value *src = ipcache_lookup(p.family, p.saddr);
	struct fs_ipcache_value *dst = ipcache_lookup(p.family, p.daddr);
	int local = (src && src->flags & FS_IPCACHE_LOCAL_ENDPOINT) ||
		    (dst && dst->flags & FS_IPCACHE_LOCAL_ENDPOINT);
	__u64 now = bpf_ktime_get_ns();
	if (!local || !rate_allows(p.family, p.saddr, now))
		return 0;
	struct fs_event ev = {};
	ev.ts_ns = now;
	ev.kind = FS_EVENT_DROP;
	ev.family = p.family;
	ev.proto = p.proto;
	__builtin_memcpy(ev.saddr, p.saddr, 16);
	__builtin_memcpy(ev.daddr, p.daddr, 16);
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
