// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// lbctl flow handoff (issue 17): second-chance forwarding between LB nodes.
//
// handoff_uplink (tc ingress on the interfaces where VIP traffic and backend
//                replies arrive): an IPv4 or IPv6 TCP packet that is not a SYN, that
//                goes to a local VIP port (hoff_vips) or comes from a backend
//                of a transparent VIP (hoff_backends), and that has no local
//                socket (bpf_skc_lookup_tcp finds nothing, or only a
//                listener), is sent to every peer LB node through the
//                collect_md VXLAN device (one copy per peer) and dropped here.
// handoff_tunnel (tc ingress on that VXLAN device): a packet a peer forwarded
//                is delivered when a local socket owns it and dropped
//                otherwise. It is never forwarded again.
//
// IPv6 packets travel the same way: VXLAN carries Ethernet frames, so the
// outer packet is IPv4 between the peers' IPv4 addresses whatever the inner
// family. The loader pins the maps and the tc links in bpffs, so forwarding
// goes on while the agent restarts.
//
// Regenerate with `make generate`; the objects are committed.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define LB_ETH_P_IP 0x0800
#define LB_ETH_P_IPV6 0x86DD
#define LB_IPPROTO_TCP 6
#define LB_TCP_LISTEN 10
#define LB_TCP_TIME_WAIT 6
#define LB_TC_ACT_OK 0
#define LB_TC_ACT_SHOT 2
#define LB_MAX_PEERS 8

// Key of hoff_vips (destination) and hoff_backends (source): an IPv4 address
// and TCP port, both in network byte order as on the wire.
struct hoff_key {
	__u32 addr;
	__u16 port;
	__u16 _pad;
};

// Key of hoff_vips6 and hoff_backends6: the same for IPv6.
struct hoff_key6 {
	__u8 addr[16];
	__u16 port;
	__u16 _pad;
};

// Configuration, one entry, written by the loader.
struct hoff_config {
	__u32 tunnel_ifindex; // the collect_md VXLAN device
	__u32 vni;            // VXLAN network identifier
	__u32 local;          // outer source address, host byte order; 0: routing picks
	__u32 npeers;         // entries used in hoff_peers
	__u32 peers[LB_MAX_PEERS]; // peer node addresses, host byte order
	__u8 tunnel_mac[6];   // MAC of every node's handoff device (the same on all)
	__u8 _pad[2];
};

// Counter indexes of hoff_stats.
enum hoff_counter {
	HOFF_FORWARDED = 0,  // copies sent to a peer
	HOFF_FORWARD_ERR,    // copies the kernel refused to send
	HOFF_NO_PEER,        // would forward but no peer configured: passed on
	HOFF_DELIVERED,      // forwarded by a peer, local socket found
	HOFF_DROPPED,        // forwarded by a peer, no local socket: dropped
	HOFF_REFUSED,        // from the tunnel but not VIP or backend traffic: dropped
	HOFF_NCOUNTERS,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct hoff_key);
	__type(value, __u8);
} hoff_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct hoff_key);
	__type(value, __u8);
} hoff_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct hoff_key6);
	__type(value, __u8);
} hoff_vips6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct hoff_key6);
	__type(value, __u8);
} hoff_backends6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hoff_config);
} hoff_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HOFF_NCOUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} hoff_stats SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&hoff_stats, &idx);
	if (v)
		*v += 1;
}

// Parsed IPv4/TCP or IPv6/TCP packet: the socket tuple and the TCP flags.
struct pkt {
	struct bpf_sock_tuple tuple;
	__u8 v6;
	__u8 syn;
	__u8 ack;
};

// parse reads an Ethernet/IPv4/TCP packet without options after the IPv4
// header (ihl 5: the only kind handed off, so the nftables admission rules can
// find the inner ports at a fixed offset), or an Ethernet/IPv6/TCP packet
// without extension headers (TCP is the next header: what a TCP stack
// sends). Returns 0 on success.
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct tcphdr *tcp;
	if ((void *)(eth + 1) > end)
		return -1;
	if (eth->h_proto == bpf_htons(LB_ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end || ip6->nexthdr != LB_IPPROTO_TCP)
			return -1;
		tcp = (void *)(ip6 + 1);
		if ((void *)(tcp + 1) > end)
			return -1;
		__builtin_memcpy(p->tuple.ipv6.saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->tuple.ipv6.daddr, &ip6->daddr, 16);
		p->tuple.ipv6.sport = tcp->source;
		p->tuple.ipv6.dport = tcp->dest;
		p->v6 = 1;
	} else if (eth->h_proto == bpf_htons(LB_ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->ihl != 5 || ip->protocol != LB_IPPROTO_TCP)
			return -1;
		if (ip->frag_off & bpf_htons(0x3fff)) // fragment
			return -1;
		tcp = (void *)(ip + 1);
		if ((void *)(tcp + 1) > end)
			return -1;
		p->tuple.ipv4.saddr = ip->saddr;
		p->tuple.ipv4.daddr = ip->daddr;
		p->tuple.ipv4.sport = tcp->source;
		p->tuple.ipv4.dport = tcp->dest;
	} else {
		return -1;
	}
	p->syn = tcp->syn;
	p->ack = tcp->ack;
	return 0;
}

// owned reports whether a local socket other than a listener owns the
// packet: an established (or closing) socket or a request socket. With
// timewait 0 a TIME_WAIT socket does not count: a client that reuses the
// port for a connection another node now holds must reach that node, and
// the TIME_WAIT socket here would only answer it with an ACK or a reset.
static __always_inline int owned(struct __sk_buff *skb, struct pkt *p, int timewait)
{
	__u32 size = p->v6 ? sizeof(p->tuple.ipv6) : sizeof(p->tuple.ipv4);
	struct bpf_sock *sk = bpf_skc_lookup_tcp(skb, &p->tuple, size, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	int ok = sk->state != LB_TCP_LISTEN && (timewait || sk->state != LB_TCP_TIME_WAIT);
	bpf_sk_release(sk);
	return ok;
}

// handed reports whether the packet is one that nodes hand off: to a local
// VIP port, or from a backend of a transparent VIP.
static __always_inline int handed(struct pkt *p)
{
	if (p->v6) {
		struct hoff_key6 k = {.port = p->tuple.ipv6.dport};
		__builtin_memcpy(k.addr, p->tuple.ipv6.daddr, 16);
		if (bpf_map_lookup_elem(&hoff_vips6, &k))
			return 1;
		__builtin_memcpy(k.addr, p->tuple.ipv6.saddr, 16);
		k.port = p->tuple.ipv6.sport;
		return bpf_map_lookup_elem(&hoff_backends6, &k) != 0;
	}
	struct hoff_key k = {.addr = p->tuple.ipv4.daddr, .port = p->tuple.ipv4.dport};
	if (bpf_map_lookup_elem(&hoff_vips, &k))
		return 1;
	k.addr = p->tuple.ipv4.saddr;
	k.port = p->tuple.ipv4.sport;
	return bpf_map_lookup_elem(&hoff_backends, &k) != 0;
}

SEC("tc")
int handoff_uplink(struct __sk_buff *skb)
{
	struct pkt p = {};
	if (parse(skb, &p))
		return LB_TC_ACT_OK;
	if (p.syn && !p.ack) // a new connection: whoever gets it owns it
		return LB_TC_ACT_OK;
	if (!handed(&p))
		return LB_TC_ACT_OK;
	if (owned(skb, &p, 0))
		return LB_TC_ACT_OK;

	__u32 zero = 0;
	struct hoff_config *cfg = bpf_map_lookup_elem(&hoff_cfg, &zero);
	if (!cfg || cfg->npeers == 0 || cfg->tunnel_ifindex == 0) {
		count(HOFF_NO_PEER);
		return LB_TC_ACT_OK;
	}
	// The inner frame is addressed to the handoff device of the peer, which
	// has the same MAC on every node; the source differs from it (VXLAN
	// drops frames that claim to come from its own address).
	__u8 macs[12];
	__builtin_memcpy(macs, cfg->tunnel_mac, 6);
	__builtin_memcpy(macs + 6, cfg->tunnel_mac, 6);
	macs[11] ^= 1;
	if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0))
		return LB_TC_ACT_SHOT;

	struct bpf_tunnel_key key = {};
	key.tunnel_id = cfg->vni;
	key.tunnel_ttl = 64;
	key.local_ipv4 = cfg->local;
	for (int i = 0; i < LB_MAX_PEERS; i++) {
		if (i >= cfg->npeers)
			break;
		key.remote_ipv4 = cfg->peers[i];
		if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX) ||
		    bpf_clone_redirect(skb, cfg->tunnel_ifindex, 0)) {
			count(HOFF_FORWARD_ERR);
			continue;
		}
		count(HOFF_FORWARDED);
	}
	return LB_TC_ACT_SHOT;
}

SEC("tc")
int handoff_tunnel(struct __sk_buff *skb)
{
	struct pkt p = {};
	// nftables admitted the outer packet from a peer node; what it carries
	// must still be handed-off traffic, never a way to reach other sockets.
	if (parse(skb, &p) || (p.syn && !p.ack) || !handed(&p)) {
		count(HOFF_REFUSED);
		return LB_TC_ACT_SHOT;
	}
	if (owned(skb, &p, 1)) {
		count(HOFF_DELIVERED);
		return LB_TC_ACT_OK;
	}
	count(HOFF_DROPPED);
	return LB_TC_ACT_SHOT;
}
