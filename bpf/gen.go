//go:build linux

package bpf

// The BPF objects are compiled for "bpfel" (little-endian BPF): the programs
// use CO-RE for every kernel structure and no pt_regs, so one object serves
// amd64 and arm64 alike. `make generate` sets BPF_CLANG, BPF_STRIP and
// BPF_CFLAGS to the pinned toolchain (-mcpu=v3: atomics and
// jumps of kernels >= 5.1); the generated rewind_bpfel.go and
// rewind_bpfel.o are committed so that `go build` needs no clang.

//go:generate go tool bpf2go -tags linux -cc $BPF_CLANG -strip $BPF_STRIP -cflags "-mcpu=v3 $BPF_CFLAGS" -target bpfel -type data_event -type conn_event -type close_event -type proc_event -type packet_event rewind rewind.bpf.c -- -I./headers
