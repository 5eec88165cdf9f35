// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// lbctl socket probes (issue 6).
//
// watch_signal (tp_btf/signal_generate): one struct lb_signal_event on the
//              signals ring buffer when a stop or continue signal is sent to
//              a process of the watched network namespace (a SIGSTOPped
//              HAProxy keeps its sockets: nothing else shows it at once).
// iter_listen  (iter/tcp): one fixed-size struct lb_listen_rec per TCP listening
//              socket of the network namespace the iterator was opened in.
// watch_state  (tp_btf/inet_sock_set_state): one struct lb_listen_event on the
//              ring buffer when a watched address starts listening
//              (newstate == TCP_LISTEN) or stops (TCP_LISTEN -> TCP_CLOSE).
//
// Regenerate with `make generate`; the objects are committed.

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define LB_AF_INET 2
#define LB_AF_INET6 10
#define LB_TCP_LISTEN 10
#define LB_TCP_CLOSE 7

// Record written by iter_listen. Layout is shared with Go (probeLbListenRec).
struct lb_listen_rec {
	__u64 netns;        // network namespace inode (net->ns.inum)
	__u64 cookie;       // socket cookie
	__u32 backlog;      // sk_ack_backlog: connections waiting in the accept queue
	__u32 max_backlog;  // sk_max_ack_backlog: listen(2) backlog
	__u8 addr[16];      // local address; IPv4 in the first 4 bytes
	__u16 family;       // AF_INET or AF_INET6
	__u16 port;         // local port, host byte order
	__u32 _pad;
};

// Key of the watch map: the listeners userspace cares about.
// netns 0 matches a listener in any network namespace.
struct lb_watch_key {
	__u64 netns;
	__u8 addr[16];
	__u16 family;
	__u16 port;         // host byte order
	__u32 _pad;
};

// Event sent on the ring buffer for a watched listener.
struct lb_listen_event {
	__u64 ts_ns;        // bpf_ktime_get_ns (CLOCK_MONOTONIC)
	__u64 netns;
	__u64 cookie;
	__u8 addr[16];
	__u16 family;
	__u16 port;
	__u8 oldstate;
	__u8 newstate;
	__u8 _pad[2];
};

// Event sent on the signals ring buffer: a stop (SIGSTOP, SIGTSTP, SIGTTIN,
// SIGTTOU) or continue (SIGCONT) signal generated for a process.
struct lb_signal_event {
	__u64 ts_ns;        // bpf_ktime_get_ns (CLOCK_MONOTONIC)
	__u32 tgid;         // the target's process ID in the initial PID namespace
	__u32 sig;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct lb_watch_key);
	__type(value, __u8);
} watch SEC(".maps");

// The network namespace (inode) whose processes' stop signals are
// reported; 0 reports none.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} signal_netns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 12);
} signals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} events SEC(".maps");

// Events lost because the ring buffer was full.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

// Referenced so the types land in BTF and bpf2go -type emits Go declarations
// for them (a global costs one small .bss map).
const struct lb_listen_rec *unused_lb_listen_rec __attribute__((unused));
const struct lb_listen_event *unused_lb_listen_event __attribute__((unused));
const struct lb_signal_event *unused_lb_signal_event __attribute__((unused));

static __always_inline void read_addr(const struct sock_common *skc, __u16 family, __u8 addr[16])
{
	if (family == LB_AF_INET) {
		__be32 a4 = BPF_CORE_READ(skc, skc_rcv_saddr);
		__builtin_memcpy(addr, &a4, 4);
	} else {
		struct in6_addr a6;

		BPF_CORE_READ_INTO(&a6, skc, skc_v6_rcv_saddr);
		__builtin_memcpy(addr, &a6, sizeof(a6));
	}
}

SEC("iter/tcp")
int iter_listen(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct seq_file *seq = ctx->meta->seq;
	struct lb_listen_rec rec = {};
	struct tcp_sock *tp;
	struct sock *sk;

	if (!skc)
		return 0;
	if (BPF_CORE_READ(skc, skc_state) != LB_TCP_LISTEN)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	sk = (struct sock *)tp;

	rec.family = BPF_CORE_READ(skc, skc_family);
	if (rec.family != LB_AF_INET && rec.family != LB_AF_INET6)
		return 0;
	rec.port = BPF_CORE_READ(skc, skc_num);
	read_addr(skc, rec.family, rec.addr);
	rec.netns = BPF_CORE_READ(skc, skc_net.net, ns.inum);
	rec.cookie = bpf_get_socket_cookie(sk);
	rec.backlog = BPF_CORE_READ(sk, sk_ack_backlog);
	rec.max_backlog = BPF_CORE_READ(sk, sk_max_ack_backlog);

	bpf_seq_write(seq, &rec, sizeof(rec));
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(watch_state, struct sock *sk, int oldstate, int newstate)
{
	struct lb_watch_key key = {};
	struct lb_listen_event ev = {};
	__u64 netns;

	if (newstate != LB_TCP_LISTEN && !(oldstate == LB_TCP_LISTEN && newstate == LB_TCP_CLOSE))
		return 0;

	key.family = sk->__sk_common.skc_family;
	if (key.family != LB_AF_INET && key.family != LB_AF_INET6)
		return 0;
	key.port = sk->__sk_common.skc_num;
	read_addr(&sk->__sk_common, key.family, key.addr);
	netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);

	key.netns = netns;
	if (!bpf_map_lookup_elem(&watch, &key)) {
		key.netns = 0;
		if (!bpf_map_lookup_elem(&watch, &key))
			return 0;
	}

	ev.ts_ns = bpf_ktime_get_ns();
	ev.netns = netns;
	ev.cookie = bpf_get_socket_cookie(sk);
	__builtin_memcpy(ev.addr, key.addr, sizeof(ev.addr));
	ev.family = key.family;
	ev.port = key.port;
	ev.oldstate = oldstate;
	ev.newstate = newstate;
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), 0)) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&dropped, &zero);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
	return 0;
}

#define LB_SIGCONT 18
#define LB_SIGSTOP 19
#define LB_SIGTTOU 22

SEC("tp_btf/signal_generate")
int BPF_PROG(watch_signal, int sig, struct kernel_siginfo *info, struct task_struct *task, int group, int result)
{
	struct lb_signal_event *ev;
	__u32 zero = 0;
	__u64 *want;

	// SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU and SIGCONT are 19, 20, 21, 22 and 18.
	if (sig < LB_SIGCONT || sig > LB_SIGTTOU)
		return 0;
	want = bpf_map_lookup_elem(&signal_netns, &zero);
	if (!want || !*want)
		return 0;
	// An exiting task has no nsproxy: the read gives 0, which matches none.
	if (BPF_CORE_READ(task, nsproxy, net_ns, ns.inum) != *want)
		return 0;
	ev = bpf_ringbuf_reserve(&signals, sizeof(*ev), 0);
	if (!ev)
		return 0;
	ev->ts_ns = bpf_ktime_get_ns();
	ev->tgid = BPF_CORE_READ(task, tgid);
	ev->sig = sig;
	bpf_ringbuf_submit(ev, 0);
	return 0;
}
