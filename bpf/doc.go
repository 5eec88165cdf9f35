// Package bpf owns lbctl's eBPF socket probes and their sock_diag fallback.
//
// Two programs live in src/probe.c, compiled by bpf2go into the committed
// probe_bpfel.o and probe_bpfel.go (`make generate` rebuilds them; a normal
// build needs no clang):
//
//   - iter_listen, a TCP socket iterator (iter/tcp) that lists the listening
//     sockets of one network namespace with their accept queue (Listeners);
//   - watch_state, on the inet_sock_set_state tracepoint (tp_btf), which sends
//     a ring-buffer event when a watched address:port starts or stops
//     listening (Watch, Events). The filter runs in the kernel.
//
// Load needs CAP_BPF (and CAP_PERFMON, CAP_SYS_ADMIN to enter namespaces) and
// a kernel with BTF (>= 5.12); otherwise it returns an error wrapping
// ErrNotSupported and the caller falls back to SockDiag, which lists the same
// listeners through NETLINK_SOCK_DIAG polling. Both implement Lister.
//
// The package never logs and does not decide health: it reports what the
// kernel says.
//
// src/include/vmlinux.h was produced with
// `bpftool btf dump file /sys/kernel/btf/vmlinux format c`; it is committed so
// regeneration is reproducible on any machine (CO-RE relocations adapt the
// objects to the running kernel at load time).
package bpf
