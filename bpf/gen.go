package bpf

// The objects are committed: a normal build needs no clang. `make generate`
// (go generate ./bpf/...) rebuilds them from src/probe.c and the committed
// src/include/vmlinux.h, byte for byte with the clang named in
// src/clang-version.txt (TestGenerateReproducible checks it; update that file
// when regenerating with another clang).
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -tags linux -type lb_listen_rec -type lb_watch_key -type lb_listen_event -type lb_signal_event probe src/probe.c -- -I./src/include
