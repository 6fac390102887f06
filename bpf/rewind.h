/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Records rewind's BPF programs write to the ring buffer. Every record starts
 * with a __u32 type (EVENT_*). The structs are naturally aligned, without
 * packing: the layout the kernel writes is the layout Go reads, through the
 * types bpf2go generates from them (-type).
 */
#ifndef __REWIND_H__
#define __REWIND_H__

#define TASK_COMM_LEN 16

/* A data event carries at most FRAG_SIZE payload bytes; larger calls are split
 * into several events. Must be a power of two. */
#define FRAG_SIZE 16384
/* Bounds of the payload walk: steps (one per fragment or iovec) and messages
 * of a sendmmsg/recvmmsg call. */
#define MAX_WALK_STEPS (1 << 16)
#define MAX_MMSG 1024

enum event_type {
	EVENT_DATA = 1,
	EVENT_CONNECT = 2,
	EVENT_ACCEPT = 3,
	EVENT_CLOSE = 4,
	EVENT_SOCKET = 5, /* a socket first seen with data: opened before recording */
	EVENT_EXEC = 6,
	EVENT_EXIT = 7,
	EVENT_PACKET = 8, /* a TCP packet's headers, from the packet socket filter */
};

/* Values of data_event.source: the syscall, or (from 32 up) a TLS library,
 * numbered like capture.Source. */
enum data_source {
	SOURCE_READ = 1,
	SOURCE_WRITE = 2,
	SOURCE_READV = 3,
	SOURCE_WRITEV = 4,
	SOURCE_SENDTO = 5,
	SOURCE_RECVFROM = 6,
	SOURCE_SENDMSG = 7,
	SOURCE_RECVMSG = 8,
	SOURCE_SENDMMSG = 9,
	SOURCE_RECVMMSG = 10,
	SOURCE_SENDFILE = 11,
	SOURCE_OPENSSL = 32,
	SOURCE_BORINGSSL = 33,
	SOURCE_GNUTLS = 34,
	SOURCE_GOTLS = 35,
};

enum data_dir {
	DIR_INGRESS = 1,
	DIR_EGRESS = 2,
};

/* Values of data_event.flags, numbered like capture.DataFlags. The DATA_FD_*
 * flags say how the fd of TLS plaintext was found; none of them set on TLS
 * plaintext means it was read from the library's own connection object (Go). */
enum data_flags {
	DATA_TRUNCATED = 1,
	DATA_FD_NESTED = 2,  /* the read/write syscall nested in the library call */
	DATA_FD_CACHED = 4,  /* the last fd seen for the library connection object */
	DATA_FD_UNKNOWN = 8, /* not found: fd is -1 */
	/* 16 is capture.DataFDObject, set in user space. */
	DATA_OTHER = 32,     /* a connection of another protocol: length only */
	DATA_MERGED = 64,    /* with DATA_OTHER: the lengths of consecutive calls */
};

/* Indexes of the per-CPU losses array. */
enum loss_cause {
	LOSS_RINGBUF = 0, /* ring buffer full: an event was dropped */
	LOSS_STATE = 1,	  /* no thread state (task storage) could be allocated: a call was not followed */
	LOSS_PACKET = 2,  /* ring buffer full: a packet was dropped */
	LOSS_MAX = 3,
};

/* One fragment of the bytes a call moved; cap payload bytes follow. */
struct data_event {
	__u32 type;
	__u32 pid; /* thread group id */
	__u32 tid;
	__s32 fd;
	__u64 start_ns; /* call entry, CLOCK_MONOTONIC */
	__u64 ts_ns;	/* call exit */
	__u64 tls_conn; /* TLS library connection object; 0 for syscalls */
	__u32 gen;	/* connection generation of (pid, fd) */
	__u32 len;	/* bytes the whole call moved */
	__u32 offset;	/* where this fragment starts in the call's bytes */
	__u32 cap;	/* payload bytes that follow this header */
	__u8 source;
	__u8 dir;
	__u8 flags;
	__u8 _pad[5];
};

/* connect, accept or a socket first seen. */
struct conn_event {
	__u32 type;
	__u32 pid;
	__u32 tid;
	__s32 fd;
	__u64 start_ns;
	__u64 ts_ns;
	__u64 inode;	 /* socket inode, to match /proc/PID/fd */
	__s32 listen_fd; /* accept: the listening socket */
	__u32 gen;
	__s32 ret; /* connect: 0 or -EINPROGRESS */
	__u16 family;
	__u16 lport;
	__u16 rport;
	__u8 state;
	__u8 _pad[5];
	__u8 laddr[16]; /* IPv4 in the first 4 bytes */
	__u8 raddr[16];
};

struct close_event {
	__u32 type;
	__u32 pid;
	__u32 tid;
	__s32 fd;
	__u64 ts_ns;
	__u32 gen;
	__u32 _pad;
};

/* exec or exit of a process (thread group). */
struct proc_event {
	__u32 type;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u64 ts_ns;
	__s32 exit_code;
	__u32 uid;
	char comm[TASK_COMM_LEN];
	/* Read in the kernel at the event, so that a process gone before the
	 * recorder reads /proc still has them: its cgroup v2 id and the inode
	 * of its network namespace (0 when it has none left, at exit). */
	__u64 cgroup_id;
	__u32 netns;
	__u32 _pad;
};

/* PACKET_MAX bounds the bytes a packet event carries: IP and TCP headers
 * (at most 60 bytes each) plus the payload the filter keeps (packet_payload,
 * at most PACKET_MAX - 120). */
#define PACKET_MAX 256

/* A packet seen by the packet socket filter: its first cap bytes, from the
 * IP header on, follow in data. */
struct packet_event {
	__u32 type;
	__u32 ifindex;
	__u64 ts_ns;	/* when the filter ran, CLOCK_MONOTONIC like the syscalls */
	__u32 len;	/* the whole packet, from the IP header on */
	__u32 cap;	/* bytes of data that are the packet's */
	__u16 protocol; /* ETH_P_IP or ETH_P_IPV6 */
	__u8 pkt_type;	/* PACKET_HOST, PACKET_OUTGOING, ... */
	__u8 _pad[5];
	__u8 data[PACKET_MAX];
};

#endif /* __REWIND_H__ */
