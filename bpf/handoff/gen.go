package handoff

// The objects are committed: a normal build needs no clang. `make generate`
// (go generate ./bpf/...) rebuilds them from src/handoff.c and the committed
// ../src/include/vmlinux.h with the clang named in ../src/clang-version.txt.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -target bpfel -tags linux -type hoff_key -type hoff_key6 -type hoff_config handoff src/handoff.c -- -I../src/include
