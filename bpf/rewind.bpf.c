//go:build ignore

// SPDX-License-Identifier: GPL-2.0
/*
 * rewind's syscall probes: what processes send and receive on TCP sockets.
 *
 * Every traced socket syscall has an enter program, which decides whether the
 * call is worth following (traced process, TCP socket fd, port filter) and
 * saves its arguments per thread, and an exit program, which reads the
 * payload the call really moved and writes it to the ring buffer.
 *
 * Only tracepoints are used (syscalls:*, sched:* as tp_btf): no kprobes, no
 * fentry. See README.md in this folder for the design.
 */
#include "vmlinux.h"
#include "bpf_helpers.h"
#include "bpf_core_read.h"
#include "bpf_tracing.h"
#include "bpf_endian.h"

#include "rewind.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define IPPROTO_MPTCP 262
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EINPROGRESS 115

/* Settings written by the loader before the programs are loaded. */
const volatile __u32 self_tgid = 0;	/* the recorder: never traced */
const volatile __u32 snaplen = 16384;	/* payload bytes kept per call */
const volatile __u8 keep_other = 0;	/* keep the payload of other protocols too */
const volatile __u8 filter_pids = 0;	/* traced_tgids decides */
const volatile __u8 filter_comms = 0;	/* traced_comms decides */
const volatile __u8 filter_cgroups = 0;	/* traced_cgroups decides */
/* Bit L is set when a selected cgroup lies L levels below the root. */
const volatile __u32 cgroup_levels = 0;
const volatile __u8 filter_ports = 0;	/* traced_ports decides */
/* A submit that takes the unread bytes across a multiple of this wakes the
 * reader up; otherwise the reader finds records on its own short poll. */
const volatile __u64 wakeup_bytes = 1 << 20;
/* TLS probes are attached: wake the reader at every exec. */
const volatile __u8 tls_wake_exec = 0;
/* Packet socket filter (packet_filter). */
const volatile __u8 packet_by_port = 0;	/* packet_ports decides; else every TCP packet */
const volatile __u32 packet_payload = 128;	/* TCP payload bytes kept per packet */
const volatile __u32 packet_lo_ifindex = 1;	/* loopback: outgoing copies dropped */
/* The kernel has bpf_rdonly_cast and lets these programs load kernel
 * structures' fields directly (see tcp_sock_of_fd). */
const volatile __u8 btf_walk = 0;
/* Go crypto/tls: where the fd is, from a *tls.Conn (see go_conn_fd). */
const volatile __u32 go_conn_iface_data = 8;	/* tls.Conn.conn (net.Conn) data word */
const volatile __u32 go_tcpconn_fd = 0;		/* net.TCPConn -> conn.fd (*netFD) */
const volatile __u32 go_netfd_sysfd = 16;	/* netFD.pfd.Sysfd */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 32 << 20); /* resized by the loader */
} events SEC(".maps");

/* Events that could not be delivered, per CPU, by cause (LOSS_*). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LOSS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} losses SEC(".maps");

/* Processes selected by --pid, and their descendants (added at fork). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} traced_tgids SEC(".maps");

/* cgroup v2 ids selected by --cgroup and --container: a process in one of
 * them or below is traced. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} traced_cgroups SEC(".maps");

struct comm_key {
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct comm_key);
	__type(value, __u8);
} traced_comms SEC(".maps");

/* --port: a flag per port, so the check is two array loads. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} traced_ports SEC(".maps");

/* packet_ports marks the local ports of traced connections (set by emit_conn,
 * and by the loader for --port and the traced processes' listening ports):
 * with packet_by_port the packet filter keeps only their packets. Entries
 * are never cleared: a reused port costs a few extra packets, nothing else. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} packet_ports SEC(".maps");

/* A syscall between its enter and exit programs. */
struct call {
	__u64 start_ns;
	__u64 buf;	/* buffer, iovec array, msghdr or mmsghdr array */
	__u64 count;	/* buffer length, iovec count or message count */
	__u64 sk;	/* struct sock *, kept as a number for bpf2go */
	__u64 tls_conn;	/* TLS plaintext: the library's connection object */
	__s32 fd;
	__u8 kind;	/* CALL_* */
	__u8 source;	/* SOURCE_* */
	__u8 dir;	/* DIR_* */
	__u8 flags;	/* DATA_FD_* of TLS plaintext */
};

enum {
	CALL_BUF = 1,
	CALL_IOV = 2,
	CALL_MSG = 3,
	CALL_MMSG = 4,
	CALL_SIZE = 5,	/* size only (sendfile) */
	CALL_CONNECT = 6,
	CALL_ACCEPT = 7,
};


/* The connection generation of each (tgid, fd) seen: a fresh number from
 * the global gen_counter at every connect and accept (so unique across all
 * fds, not only per fd), 0 for a socket first met with data (opened before
 * the recording; announced by an EVENT_SOCKET); deleted at close, so fd reuse
 * never merges two connections. LRU:
 * entries of processes that exit without closing age out. */
struct conn_key {
	__u32 tgid;
	__s32 fd;
};

/* What the programs learned of a connection's protocol from its first bytes
 * (conn_classify): unknown yet, HTTP or TLS (or anything else rewind may
 * parse: kept whole), or another protocol (recorded by length only). */
enum {
	CLASS_UNKNOWN = 0,
	CLASS_KEEP = 1,
	CLASS_OTHER = 2,
};

struct conn_val {
	__u32 gen;
	__u8 class;	/* CLASS_* */
	__u8 maybe_dir; /* DIR_* of first bytes that wait for the answer */
	/* A CLASS_OTHER connection's calls not yet written: consecutive calls
	 * of one direction and source, written as one length-only record
	 * (pend_flush). */
	__u8 pend_dir;
	__u8 pend_source;
	__u32 pend_tid;
	__u32 pend_len;
	__u64 pend_start;
	__u64 pend_end;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, struct conn_key);
	__type(value, struct conn_val);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} gen_counter SEC(".maps");



/* Force bpf2go to emit Go types for these. */
const struct data_event *unused_data_event __attribute__((unused));
const struct conn_event *unused_conn_event __attribute__((unused));
const struct proc_event *unused_proc_event __attribute__((unused));
const struct close_event *unused_close_event __attribute__((unused));
const struct packet_event *unused_packet_event __attribute__((unused));

static __always_inline void count_loss(__u32 cause)
{
	__u64 *n = bpf_map_lookup_elem(&losses, &cause);
	if (n)
		*n += 1;
}

/* ring_bytes is what a record of size bytes takes in the ring: an 8-byte
 * header, then the data padded to 8 bytes. */
#define ring_bytes(size) ((((__u64)(size)) + 8 + 7) & ~7ULL)

/* wakeup_flag decides whether a record of size bytes wakes the reader:
 * only the record that takes the unread bytes across a multiple of
 * wakeup_bytes does. Every record above the mark used to, and each of them
 * queued an irq_work (a self-IPI, a VM exit in a guest) while the reader was
 * already awake and draining: a flat-out recording raised thousands a
 * second. A reader that went to sleep had read everything, so the next
 * crossing, at wakeup_bytes, is the one it needs; the later marks wake it
 * again should it miss one (programs on two CPUs that query before either
 * reserves can both step over a mark). before is what the ring held before
 * the record and size what the record takes in it (ring_bytes), so that
 * one program's records, one after the other, cover every byte; for a
 * reserved record the query counts the record already. */
static __always_inline __u64 wakeup_flag(__u64 before, __u64 size)
{
	return before / wakeup_bytes != (before + size) / wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline __u64 unread_bytes(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
}

/* output writes a record, waking the reader when it crosses a mark or when
 * force is set; a full ring counts a loss. */
static __always_inline void output(void *data, __u64 size, bool force)
{
	__u64 flags = force ? BPF_RB_FORCE_WAKEUP : wakeup_flag(unread_bytes(), ring_bytes(size));
	if (bpf_ringbuf_output(&events, data, size, flags))
		count_loss(LOSS_RINGBUF);
}

static __always_inline void submit(void *data, __u64 size)
{
	output(data, size, false);
}

/* --- which processes are traced ------------------------------------------ */

#define MAX_CGROUP_LEVEL 31

/* cgroup_traced reports whether the current task's cgroup (v2) is a
 * selected one or lies below one: its ancestor at each selected cgroup's
 * level is looked up, so a cgroup made during the recording under a
 * selected one (a container's new process, a pod's new container) is in. */
static __always_inline bool cgroup_traced(void)
{
	for (int l = 0; l <= MAX_CGROUP_LEVEL; l++) {
		if (!(cgroup_levels & (1u << l)))
			continue;
		__u64 id = bpf_get_current_ancestor_cgroup_id(l);
		if (id && bpf_map_lookup_elem(&traced_cgroups, &id))
			return true;
	}
	return false;
}

/* tgid_traced decides from the filter maps whether the current process is
 * traced (the union of the filters given). */
static __always_inline bool tgid_traced(__u32 tgid)
{
	if (tgid == self_tgid)
		return false;
	if (!filter_pids && !filter_comms && !filter_cgroups)
		return true;
	if (filter_cgroups && cgroup_traced())
		return true;
	if (filter_pids && bpf_map_lookup_elem(&traced_tgids, &tgid))
		return true;
	if (filter_comms) {
		struct comm_key k = {};
		bpf_get_current_comm(k.comm, sizeof(k.comm));
		if (bpf_map_lookup_elem(&traced_comms, &k))
			return true;
	}
	return false;
}

/* --- TLS library calls in progress ---------------------------------------- */

/* A TLS library call (SSL_read, gnutls_record_send…) between its entry
 * uprobe and its return uprobe, per thread. */
struct tls_call {
	__u64 start_ns;
	__u64 conn;	/* SSL *, gnutls_session_t */
	__u64 buf;
	__u64 out;	/* size_t * of the _ex variants, where the length goes; 0 otherwise */
	__s32 fd;	/* socket of the read/write syscall nested in the call; -1 before one */
	__u8 source;	/* SOURCE_* */
	__u8 dir;	/* DIR_* */
	__u8 _pad[2];
};

/*
 * What a thread is doing, in task-local storage (one value per thread, freed
 * with the thread): a lookup is a pointer walk from the current task, where
 * a hash table keyed by pid_tgid costs a hash, a bucket walk and, for
 * updates and deletes, a lock. Every traced syscall's enter and exit, and
 * every untraced one's, start here.
 */
struct thread {
	struct call call;	/* the syscall between enter and exit; kind 0: none */
	struct tls_call tls;	/* the TLS library call in progress, if tls_depth */
	char comm[TASK_COMM_LEN];	/* the task name verdict was taken for */
	__u8 verdict;		/* VERDICT_* */
	__u8 tls_depth;		/* 0: no TLS call; n: entered n times (nested _ex variants) */
	__u8 _pad[6];
};

enum {
	VERDICT_UNKNOWN = 0,
	VERDICT_TRACED = 1,
	VERDICT_UNTRACED = 2,
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread);
} threads SEC(".maps");

/* current_thread returns the current thread's state, created when create is
 * set (NULL when the kernel cannot allocate it, counted as LOSS_STATE). */
static __always_inline struct thread *current_thread(bool create)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct thread *th =
		bpf_task_storage_get(&threads, task, 0, create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	if (!th && create)
		count_loss(LOSS_STATE);
	return th;
}

/* thread_traced is tgid_traced with the verdict kept per thread: it stays
 * valid while the task name is the one it was taken for (a name changes at
 * exec, prctl(PR_SET_NAME) or a write to /proc/PID/comm) and the process
 * keeps its tgid. With --pid, the traced set changes only at fork (a new
 * thread, so no verdict yet) and exit. */
static __always_inline bool thread_traced(struct thread *th, __u32 tgid)
{
	if (tgid == self_tgid)
		return false;
	if (!filter_pids && !filter_comms && !filter_cgroups)
		return true;
	char comm[TASK_COMM_LEN];
	if (btf_walk) {
		/* Two loads where the helper is a call: every syscall of
		 * every thread, traced or not, comes through here. */
		struct task_struct *task = bpf_get_current_task_btf();
		__builtin_memcpy(comm, task->comm, sizeof(comm));
	} else {
		bpf_get_current_comm(comm, sizeof(comm));
	}
	__u64 *now = (__u64 *)comm, *then = (__u64 *)th->comm;
	if (th->verdict != VERDICT_UNKNOWN && now[0] == then[0] && now[1] == then[1])
		return th->verdict == VERDICT_TRACED;
	bool traced = tgid_traced(tgid);
	__builtin_memcpy(th->comm, comm, sizeof(comm));
	th->verdict = traced ? VERDICT_TRACED : VERDICT_UNTRACED;
	return traced;
}

/* The last socket fd seen under each library connection object, for calls
 * served from the library's buffer without a syscall. */
struct tls_fd_key {
	__u32 tgid;
	__u32 _pad;
	__u64 conn;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct tls_fd_key);
	__type(value, __s32);
} tls_fds SEC(".maps");

/*
 * tls_claims_call is called by the syscall programs for a TCP socket fd: when
 * the thread is inside a TLS library call, the fd is the call's connection
 * (the nested-syscall method) and the syscall's bytes are ciphertext, which
 * is then recorded by length only: the library probe records the plaintext.
 */
static __always_inline bool tls_claims_call(struct thread *th, int fd)
{
	if (!th->tls_depth)
		return false;
	th->tls.fd = fd;
	return true;
}

/* --- fd -> TCP socket ------------------------------------------------------ */

/* bpf_rdonly_cast (a kfunc, Linux 6.2) turns an address into a pointer the
 * verifier lets a program load fields through directly. Weak: on a kernel
 * without it the loader leaves btf_walk unset and the call is never made. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;
#define core_cast(ptr, type) ((type *)bpf_rdonly_cast((void *)(ptr), bpf_core_type_id_kernel(type)))

/* tcp_sock_of_fd_walk is tcp_sock_of_fd by direct loads: each is a plain
 * load the kernel guards against faults, where bpf_probe_read_kernel is a
 * helper call with its own checks. The walk was twelve helper calls;
 * loading the fields took nginx's recvfrom and writev enter programs from
 * about 240 and 215 ns to 176 and 150 ns. */
static __always_inline struct sock *tcp_sock_of_fd_walk(int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct files_struct *files = task->files;
	if (!files)
		return NULL;
	struct fdtable *fdt = files->fdt;
	if (!fdt || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	struct file **fds = fdt->fd;
	struct file *fp = NULL;
	if (bpf_probe_read_kernel(&fp, sizeof(fp), &fds[fd]) || !fp)
		return NULL;
	struct file *f = core_cast(fp, struct file);
	struct inode *inode = f->f_inode;
	if (!inode || (inode->i_mode & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *sock = core_cast(f->private_data, struct socket);
	if (!sock || sock->type != SOCK_STREAM)
		return NULL;
	struct sock *sk = sock->sk;
	if (!sk)
		return NULL;
	__u16 family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return NULL;
	__u16 proto = sk->sk_protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_MPTCP)
		return NULL;
	return sk;
}

/* tcp_sock_of_fd_read is tcp_sock_of_fd by bpf_probe_read_kernel, for
 * kernels without bpf_rdonly_cast. */
static __always_inline struct sock *tcp_sock_of_fd_read(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return NULL;
	if ((unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return NULL;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	if (!sock || BPF_CORE_READ(sock, type) != SOCK_STREAM)
		return NULL;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return NULL;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return NULL;
	__u16 proto = BPF_CORE_READ(sk, sk_protocol);
	if (proto != IPPROTO_TCP && proto != IPPROTO_MPTCP)
		return NULL;
	return sk;
}

/* tcp_sock_of_fd returns the socket behind fd in the current process when it
 * is a TCP socket of family AF_INET or AF_INET6, and NULL otherwise (regular
 * files, pipes, unix sockets, UDP...). */
static __always_inline struct sock *tcp_sock_of_fd(int fd)
{
	if (fd < 0)
		return NULL;
	if (btf_walk)
		return tcp_sock_of_fd_walk(fd);
	return tcp_sock_of_fd_read(fd);
}

static __always_inline bool ports_traced(struct sock *sk)
{
	if (!filter_ports)
		return true;
	__u32 lport, rport;
	if (btf_walk) {
		struct sock *s = core_cast(sk, struct sock);
		lport = s->__sk_common.skc_num;
		rport = bpf_ntohs(s->__sk_common.skc_dport);
	} else {
		lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	}
	__u8 *l = bpf_map_lookup_elem(&traced_ports, &lport);
	if (l && *l)
		return true;
	__u8 *r = bpf_map_lookup_elem(&traced_ports, &rport);
	return r && *r;
}

static __always_inline void read_addrs(struct sock *sk, struct conn_event *e)
{
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	e->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (e->family == AF_INET) {
		__be32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(e->laddr, &l, 4);
		__builtin_memcpy(e->raddr, &r, 4);
	} else {
		BPF_CORE_READ_INTO(&e->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&e->raddr, sk, __sk_common.skc_v6_daddr);
	}
}

static __always_inline __u32 next_gen(void)
{
	__u32 zero = 0;
	__u32 *g = bpf_map_lookup_elem(&gen_counter, &zero);
	if (!g)
		return 0;
	return __sync_fetch_and_add(g, 1) + 1;
}

/* emit_conn writes a connect, accept or socket event for sk on fd. */
static __always_inline void emit_conn(__u32 type, __u64 pid_tgid, __u64 start, int fd, int listen_fd,
				      __u32 gen, int ret, struct sock *sk)
{
	struct conn_event e = {};
	e.type = type;
	e.pid = pid_tgid >> 32;
	e.tid = (__u32)pid_tgid;
	e.fd = fd;
	e.listen_fd = listen_fd;
	e.start_ns = start;
	e.ts_ns = bpf_ktime_get_ns();
	e.gen = gen;
	e.ret = ret;
	if (sk) {
		read_addrs(sk, &e);
		__u32 port = e.lport;
		__u8 one = 1;
		bpf_map_update_elem(&packet_ports, &port, &one, BPF_ANY);
		struct socket *sock = BPF_CORE_READ(sk, sk_socket);
		e.inode = BPF_CORE_READ(sock, file, f_inode, i_ino);
	}
	submit(&e, sizeof(e));
}

/* conn_of returns the state of the connection on (tgid, fd). A socket met
 * for the first time (opened before recording started, or passed in) gets
 * generation 0 and its addresses are announced with an EVENT_SOCKET. */
static __always_inline struct conn_val *conn_of(__u64 pid_tgid, int fd, struct sock *sk)
{
	struct conn_key k = { .tgid = pid_tgid >> 32, .fd = fd };
	struct conn_val *v = bpf_map_lookup_elem(&conns, &k);
	if (v)
		return v;
	struct conn_val nv = {}; /* FORMAT.md: generation 0 is a connection that predates the recording */
	bpf_map_update_elem(&conns, &k, &nv, BPF_ANY);
	emit_conn(EVENT_SOCKET, pid_tgid, 0, fd, -1, 0, 0, sk);
	return bpf_map_lookup_elem(&conns, &k);
}

static __always_inline void conn_new(__u64 pid_tgid, int fd, __u32 gen)
{
	struct conn_key k = { .tgid = pid_tgid >> 32, .fd = fd };
	struct conn_val v = { .gen = gen };
	bpf_map_update_elem(&conns, &k, &v, BPF_ANY);
}

/* What a connection's first bytes in one direction say, by the rules of
 * analyze's protocol detection (analyze/layer.go detect and awaitAnswer):
 * KEEP for anything it may parse (an HTTP/1 request or status line, or a
 * prefix of one; HTTP/2's preface or a frame header; a TLS record), OTHER
 * when it certainly decides "other protocol" (a control byte first: binary
 * length-prefixed protocols, bulk data), MAYBE for other text, which it
 * holds until the other direction answers, and UNDECIDED for fewer than 4
 * bytes. */
enum {
	VERDICT_UNDECIDED = 0,
	VERDICT_KEEP = 1,
	VERDICT_OTHER = 2,
	VERDICT_MAYBE = 3,
};

#define CLASSIFY_BYTES 16

static __always_inline int first_bytes_verdict(const __u8 *p, __u32 n)
{
	if (n < 4)
		return VERDICT_UNDECIDED;
	if (p[0] == 0x16 && p[1] == 3)
		return VERDICT_KEEP; /* TLS handshake */
	if (p[3] == 4)
		return VERDICT_KEEP; /* an HTTP/2 SETTINGS frame's header, maybe */
	/* A request line's method: letters, '-' or '_' up to a space at 3..20,
	 * or all such for as far as the bytes go ("HTTP/1.", "PRI *" and
	 * every method start so). */
	bool method = true;
	for (int i = 0; i < CLASSIFY_BYTES; i++) {
		if (i >= n)
			break;
		__u8 c = p[i];
		if (c == ' ') {
			method = i >= 3;
			break;
		}
		if (!(c >= 'A' && c <= 'Z') && c != '-' && c != '_') {
			method = c == '/' && i == 4 && p[0] == 'H'; /* HTTP/ */
			break;
		}
	}
	if (method)
		return VERDICT_KEEP;
	if (p[0] < '!' || p[0] == 0x7f)
		return VERDICT_OTHER;
	return VERDICT_MAYBE;
}

/* conn_classify decides, from the first bytes of a connection's calls, whether
 * its later calls are kept whole or by length only; it returns the DATA_*
 * flag for this call. A call that decides is itself kept whole, so the
 * analysis decides the same from the same bytes. Connections that predate
 * the recording (generation 0) are joined mid-stream, where the first
 * bytes prove nothing: they are kept. */
static __always_inline bool conn_undecided(struct conn_val *v, __u8 dir)
{
	return !keep_other && v->gen != 0 && v->class == CLASS_UNKNOWN && v->maybe_dir != dir;
}

static __always_inline __u32 conn_classify(struct conn_val *v, __u8 dir, __u64 addr, __u32 len)
{
	if (!keep_other && v->class == CLASS_OTHER)
		return DATA_OTHER;
	if (!conn_undecided(v, dir) || !addr)
		return 0;
	__u8 p[CLASSIFY_BYTES] = {};
	__u32 n = len < CLASSIFY_BYTES ? len : CLASSIFY_BYTES;
	if (bpf_probe_read_user(p, n, (void *)addr))
		return 0;
	int verdict = first_bytes_verdict(p, n);
	if (verdict == VERDICT_KEEP) {
		v->class = CLASS_KEEP;
	} else if (verdict == VERDICT_OTHER || (verdict == VERDICT_MAYBE && v->maybe_dir)) {
		/* Control bytes; or text whose answer is no status line either. */
		v->class = CLASS_OTHER;
	} else if (verdict == VERDICT_MAYBE) {
		v->maybe_dir = dir;
	}
	return 0;
}

/* The most a merged record holds, and the longest it waits: a slow stream
 * still shows its progress. */
#define PEND_MAX_BYTES (1 << 20)
#define PEND_MAX_NS 100000000ULL

/* pend_flush writes the pending calls of v as one length-only record. */
static __always_inline void pend_flush(struct conn_val *v, __u32 tgid, int fd)
{
	if (!v->pend_len)
		return;
	struct data_event e = {
		.type = EVENT_DATA,
		.pid = tgid,
		.tid = v->pend_tid,
		.fd = fd,
		.start_ns = v->pend_start,
		.ts_ns = v->pend_end,
		.gen = v->gen,
		.len = v->pend_len,
		.source = v->pend_source,
		.dir = v->pend_dir,
		.flags = DATA_OTHER | DATA_MERGED | DATA_TRUNCATED,
	};
	v->pend_len = 0;
	submit(&e, sizeof(e));
}

/* pend_add adds a call of a CLASS_OTHER connection to its pending record,
 * writing the pending one first when this call cannot join it. */
static __always_inline void pend_add(struct conn_val *v, __u64 id, struct call *c, __u64 ts, __u32 len)
{
	if (v->pend_len && (v->pend_dir != c->dir || v->pend_source != c->source ||
			    v->pend_len + len > PEND_MAX_BYTES || ts - v->pend_start > PEND_MAX_NS))
		pend_flush(v, id >> 32, c->fd);
	if (!v->pend_len) {
		v->pend_start = c->start_ns;
		v->pend_dir = c->dir;
		v->pend_source = c->source;
	}
	v->pend_len += len;
	v->pend_end = ts;
	v->pend_tid = (__u32)id;
	if (v->pend_len >= PEND_MAX_BYTES)
		pend_flush(v, id >> 32, c->fd);
}

/* --- payload --------------------------------------------------------------- */

/* The walk over a call's bytes: a plain buffer is one segment, an iovec array
 * many. The payload is copied into the scratch fragment buffer, which is sent
 * whenever it is full or the walk ends. */
struct walk {
	__u64 iov;	/* user iovec array, 0 for a single buffer */
	__u64 nseg;	/* iovec count */
	__u64 seg;	/* next iovec to load */
	__u64 base;	/* current segment */
	__u64 seg_len;
	__u64 seg_off;
	__u32 total;	/* bytes to capture: min(call length, snaplen) */
	__u32 done;	/* bytes captured */
	__u32 frag_used;	/* bytes in the scratch fragment */
	__u32 frag_off;	/* call offset of the scratch fragment */
	__u32 sent;	/* fragments sent */
	__u32 fault;	/* a user-memory read failed: the rest is missing */
	__u32 flags;	/* DATA_* flags of every fragment */
	__u32 _pad;
};

/* Per-CPU scratch space for a data event and its payload fragment. It is
 * twice FRAG_SIZE so that the verifier can prove that a copy of at most
 * FRAG_SIZE bytes at an offset below FRAG_SIZE stays inside. A plain array
 * indexed by CPU (max_entries set to the CPU count by the loader) because
 * per-CPU array values are limited to 32 KiB. The walk state lives here too,
 * not on the stack: the verifier then sees its counters as unknown scalars and
 * the bpf_loop callback converges after one pass instead of being simulated
 * iteration by iteration. */
struct scratch {
	struct walk w;
	struct data_event ev;
	__u8 buf[2 * FRAG_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* resized to the number of possible CPUs */
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

static __always_inline struct scratch *get_scratch(void)
{
	__u32 cpu = bpf_get_smp_processor_id();
	return bpf_map_lookup_elem(&scratch, &cpu);
}

/* send_fragment writes the scratch fragment. final marks the walk's end, where
 * a fragment is sent even when empty if nothing was sent yet, so every call
 * yields at least one event with its length. */
static __always_inline void send_fragment(struct walk *w, struct scratch *s, bool final)
{
	if (w->frag_used == 0 && (!final || w->sent > 0))
		return;
	__u32 cap = w->frag_used;
	if (cap > FRAG_SIZE)
		cap = FRAG_SIZE;
	s->ev.offset = w->frag_off;
	s->ev.cap = cap;
	s->ev.flags = w->flags;
	if (final && w->frag_off + cap < s->ev.len)
		s->ev.flags |= DATA_TRUNCATED;
	submit(&s->ev, sizeof(struct data_event) + cap);
	w->sent++;
	w->frag_off += cap;
	w->frag_used = 0;
}

static long walk_step(__u64 index, void *ctx)
{
	struct scratch *s = get_scratch();
	if (!s)
		return 1;
	struct walk *w = &s->w;
	if (w->done >= w->total || w->fault) {
		send_fragment(w, s, true);
		return 1;
	}
	if (w->seg_off >= w->seg_len) {
		if (!w->iov || w->seg >= w->nseg) {
			send_fragment(w, s, true);
			return 1;
		}
		struct iovec v;
		if (bpf_probe_read_user(&v, sizeof(v), (void *)(w->iov + w->seg * sizeof(struct iovec)))) {
			w->fault = 1;
			return 0;
		}
		w->base = (__u64)v.iov_base;
		w->seg_len = v.iov_len;
		w->seg_off = 0;
		w->seg++;
		return 0;
	}
	__u64 n = w->seg_len - w->seg_off;
	__u32 at = w->frag_used;
	if (at >= FRAG_SIZE)
		return 1;
	if (n > FRAG_SIZE - at)
		n = FRAG_SIZE - at;
	if (n > w->total - w->done)
		n = w->total - w->done;
	if (n > FRAG_SIZE)
		return 1;
	if (bpf_probe_read_user(&s->buf[at], n, (void *)(w->base + w->seg_off))) {
		w->fault = 1;
		return 0;
	}
	w->seg_off += n;
	w->frag_used += n;
	w->done += n;
	if (w->frag_used >= FRAG_SIZE)
		send_fragment(w, s, w->done >= w->total);
	return 0;
}

/* The bytes of one call (or one message of an mmsg call): from buf when iov
 * is 0, else from the iovec array iov[nseg]. */
struct span {
	__u64 buf;
	__u64 iov;
	__u64 nseg;
	__u64 ts;
	__u32 len;
	__u32 gen;
};

/* emit_data writes the data events of one call. */
static __noinline int emit_data(struct call *c, struct span *sp)
{
	__u64 buf = sp->buf, iov = sp->iov, nseg = sp->nseg, ts = sp->ts;
	__u32 len = sp->len, gen = sp->gen;
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	s->ev.type = EVENT_DATA;
	s->ev.pid = id >> 32;
	s->ev.tid = (__u32)id;
	s->ev.fd = c->fd;
	s->ev.start_ns = c->start_ns;
	s->ev.ts_ns = ts;
	s->ev.tls_conn = c->tls_conn;
	s->ev.gen = gen;
	s->ev.len = len;
	s->ev.source = c->source;
	s->ev.dir = c->dir;

	struct walk *w = &s->w;
	__builtin_memset(w, 0, sizeof(*w));
	w->flags = c->flags;
	w->total = len < snaplen ? len : snaplen;
	if (c->kind == CALL_SIZE)
		w->total = 0;
	if (iov) {
		w->iov = iov;
		w->nseg = nseg;
	} else {
		w->base = buf;
		w->seg_len = len;
	}
	/* Each step copies up to a fragment or loads an iovec. */
	bpf_loop(MAX_WALK_STEPS, walk_step, NULL, 0);
	s = get_scratch();
	if (s && (s->w.sent == 0 || s->w.frag_used > 0))
		send_fragment(&s->w, s, true);
	return 0;
}

struct mmsg_walk {
	struct call *c;
	__u64 ts;
	__u32 gen;
	__u32 n;
};

static long mmsg_step(__u64 i, void *ctx)
{
	struct mmsg_walk *m = ctx;
	if (i >= m->n)
		return 1;
	struct mmsghdr h;
	struct call *c = m->c;
	if (bpf_probe_read_user(&h, sizeof(h), (void *)(c->buf + i * sizeof(struct mmsghdr))))
		return 1;
	struct span sp = {
		.iov = (__u64)h.msg_hdr.msg_iov, .nseg = h.msg_hdr.msg_iovlen, .ts = m->ts, .len = h.msg_len, .gen = m->gen,
	};
	emit_data(c, &sp);
	return 0;
}

/* --- enter and exit -------------------------------------------------------- */

static __always_inline int enter_call(int fd, __u64 buf, __u64 count, __u8 kind, __u8 source, __u8 dir)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (id >> 32 == self_tgid)
		return 0;
	struct thread *th = current_thread(true);
	if (!th || !thread_traced(th, id >> 32))
		return 0;
	struct call c = {
		.start_ns = bpf_ktime_get_ns(),
		.buf = buf,
		.count = count,
		.fd = fd,
		.kind = kind,
		.source = source,
		.dir = dir,
	};
	if (kind != CALL_CONNECT && kind != CALL_ACCEPT) {
		struct sock *sk = tcp_sock_of_fd(fd);
		if (!sk)
			return 0;
		/* Ciphertext of a TLS call: its length only. */
		if (tls_claims_call(th, fd))
			c.kind = CALL_SIZE;
		if (!ports_traced(sk))
			return 0;
		c.sk = (__u64)sk;
	}
	th->call = c;
	return 0;
}

static __always_inline int exit_call(long ret)
{
	struct thread *th = current_thread(false);
	if (!th || !th->call.kind)
		return 0;
	struct call c = th->call;
	th->call.kind = 0;
	__u64 id = bpf_get_current_pid_tgid();
	__u64 ts = bpf_ktime_get_ns();

	if (c.kind == CALL_CONNECT) {
		if (ret != 0 && ret != -EINPROGRESS)
			return 0;
		struct sock *sk = tcp_sock_of_fd(c.fd);
		if (!sk || !ports_traced(sk))
			return 0;
		__u32 gen = next_gen();
		conn_new(id, c.fd, gen);
		emit_conn(EVENT_CONNECT, id, c.start_ns, c.fd, -1, gen, ret, sk);
		return 0;
	}
	if (c.kind == CALL_ACCEPT) {
		if (ret < 0)
			return 0;
		struct sock *sk = tcp_sock_of_fd(ret);
		if (!sk || !ports_traced(sk))
			return 0;
		__u32 gen = next_gen();
		conn_new(id, ret, gen);
		emit_conn(EVENT_ACCEPT, id, c.start_ns, ret, c.fd, gen, 0, sk);
		return 0;
	}

	if (ret <= 0)
		return 0;
	struct conn_val none = {};
	struct conn_val *cv = conn_of(id, c.fd, (struct sock *)c.sk);
	if (!cv)
		cv = &none; /* no map entry: recorded whole, as generation 0 */
	struct span sp = { .ts = ts, .len = ret, .gen = cv->gen };
	/* The first bytes the call moved: a buffer's, or its first segment's. */
	__u64 first = 0, first_len = ret;
	switch (c.kind) {
	case CALL_BUF:
		sp.buf = first = c.buf;
		break;
	case CALL_IOV:
		sp.iov = c.buf;
		sp.nseg = c.count;
		break;
	case CALL_MSG: {
		struct user_msghdr m;
		if (bpf_probe_read_user(&m, sizeof(m), (void *)c.buf))
			__builtin_memset(&m, 0, sizeof(m));
		sp.iov = (__u64)m.msg_iov;
		sp.nseg = m.msg_iovlen;
		break;
	}
	case CALL_SIZE:
		sp.buf = c.buf;
		break;
	}
	/* Only a connection not yet told apart needs its first bytes: the
	 * common call, on a decided one, reads no iovec here. */
	if (sp.iov && sp.nseg > 0 && conn_undecided(cv, c.dir)) {
		struct iovec v0;
		if (!bpf_probe_read_user(&v0, sizeof(v0), (void *)sp.iov)) {
			first = (__u64)v0.iov_base;
			if (v0.iov_len < first_len)
				first_len = v0.iov_len;
		}
	}
	if (c.kind != CALL_SIZE && c.kind != CALL_MMSG &&
	    conn_classify(cv, c.dir, first, first_len) == DATA_OTHER) {
		/* No record per call: the lengths of consecutive calls add up. */
		pend_add(cv, id, &c, ts, ret);
		return 0;
	}
	switch (c.kind) {
	case CALL_BUF:
	case CALL_SIZE:
	case CALL_IOV:
	case CALL_MSG:
		emit_data(&c, &sp);
		break;
	case CALL_MMSG: {
		struct mmsg_walk mw = { .c = &c, .ts = ts, .gen = sp.gen, .n = ret };
		bpf_loop(MAX_MMSG, mmsg_step, &mw, 0);
		break;
	}
	}
	return 0;
}

#define ENTER(name) SEC("tracepoint/syscalls/sys_enter_" #name) int enter_##name(struct syscall_enter_ctx *ctx)
#define EXIT(name)                                                                 \
	SEC("tracepoint/syscalls/sys_exit_" #name) int exit_##name(struct syscall_exit_ctx *ctx) \
	{                                                                          \
		return exit_call(ctx->ret);                                        \
	}

ENTER(read) { return enter_call(ctx->args[0], ctx->args[1], ctx->args[2], CALL_BUF, SOURCE_READ, DIR_INGRESS); }
EXIT(read)
ENTER(write) { return enter_call(ctx->args[0], ctx->args[1], ctx->args[2], CALL_BUF, SOURCE_WRITE, DIR_EGRESS); }
EXIT(write)
ENTER(readv) { return enter_call(ctx->args[0], ctx->args[1], ctx->args[2], CALL_IOV, SOURCE_READV, DIR_INGRESS); }
EXIT(readv)
ENTER(writev) { return enter_call(ctx->args[0], ctx->args[1], ctx->args[2], CALL_IOV, SOURCE_WRITEV, DIR_EGRESS); }
EXIT(writev)
/* MSG_PEEK: the bytes stay queued and are read again by a later call, so a
 * peek moves nothing and is not recorded (nginx peeks before TLS handshakes). */
#define RW_MSG_PEEK 0x2
ENTER(recvfrom)
{
	if (ctx->args[3] & RW_MSG_PEEK)
		return 0;
	return enter_call(ctx->args[0], ctx->args[1], ctx->args[2], CALL_BUF, SOURCE_RECVFROM, DIR_INGRESS);
}
EXIT(recvfrom)
ENTER(sendto) { return enter_call(ctx->args[0], ctx->args[1], ctx->args[2], CALL_BUF, SOURCE_SENDTO, DIR_EGRESS); }
EXIT(sendto)
ENTER(recvmsg)
{
	if (ctx->args[2] & RW_MSG_PEEK)
		return 0;
	return enter_call(ctx->args[0], ctx->args[1], 0, CALL_MSG, SOURCE_RECVMSG, DIR_INGRESS);
}
EXIT(recvmsg)
ENTER(sendmsg) { return enter_call(ctx->args[0], ctx->args[1], 0, CALL_MSG, SOURCE_SENDMSG, DIR_EGRESS); }
EXIT(sendmsg)
ENTER(recvmmsg)
{
	if (ctx->args[3] & RW_MSG_PEEK)
		return 0;
	return enter_call(ctx->args[0], ctx->args[1], ctx->args[2], CALL_MMSG, SOURCE_RECVMMSG, DIR_INGRESS);
}
EXIT(recvmmsg)
ENTER(sendmmsg) { return enter_call(ctx->args[0], ctx->args[1], ctx->args[2], CALL_MMSG, SOURCE_SENDMMSG, DIR_EGRESS); }
EXIT(sendmmsg)
/* sendfile(out_fd, in_fd, offset, count): the bytes come from a file, only
 * their count is recorded. */
ENTER(sendfile64) { return enter_call(ctx->args[0], 0, ctx->args[3], CALL_SIZE, SOURCE_SENDFILE, DIR_EGRESS); }
EXIT(sendfile64)
ENTER(connect) { return enter_call(ctx->args[0], 0, 0, CALL_CONNECT, 0, 0); }
EXIT(connect)
ENTER(accept) { return enter_call(ctx->args[0], 0, 0, CALL_ACCEPT, 0, 0); }
EXIT(accept)
ENTER(accept4) { return enter_call(ctx->args[0], 0, 0, CALL_ACCEPT, 0, 0); }
EXIT(accept4)

/* close: the fd is gone at exit, so the event is written at enter, for the
 * connections this recording knows. */
SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct syscall_enter_ctx *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (id >> 32 == self_tgid)
		return 0;
	struct conn_key k = { .tgid = id >> 32, .fd = ctx->args[0] };
	struct conn_val *g = bpf_map_lookup_elem(&conns, &k);
	if (!g)
		return 0;
	struct close_event e = {
		.type = EVENT_CLOSE,
		.pid = id >> 32,
		.tid = (__u32)id,
		.fd = k.fd,
		.ts_ns = bpf_ktime_get_ns(),
		.gen = g->gen,
	};
	pend_flush(g, k.tgid, k.fd);
	bpf_map_delete_elem(&conns, &k);
	submit(&e, sizeof(e));
	return 0;
}

/* --- processes ------------------------------------------------------------- */

static __always_inline void emit_proc(__u32 type, struct task_struct *task, __u64 wake)
{
	struct proc_event e = {};
	e.type = type;
	e.ts_ns = bpf_ktime_get_ns();
	e.pid = BPF_CORE_READ(task, tgid);
	e.tid = BPF_CORE_READ(task, pid);
	e.ppid = BPF_CORE_READ(task, real_parent, tgid);
	e.uid = (__u32)bpf_get_current_uid_gid();
	e.exit_code = BPF_CORE_READ(task, exit_code);
	BPF_CORE_READ_STR_INTO(&e.comm, task, comm);
	/* Both programs run in the task's own context (exec, exit). */
	e.cgroup_id = bpf_get_current_cgroup_id();
	e.netns = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
	output(&e, sizeof(e), wake);
}

/* Children of traced processes are traced too. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	if (!filter_pids)
		return 0;
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	if (ptgid == ctgid || !bpf_map_lookup_elem(&traced_tgids, &ptgid))
		return 0;
	__u8 one = 1;
	bpf_map_update_elem(&traced_tgids, &ctgid, &one, BPF_ANY);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *task, pid_t old_pid, void *bprm)
{
	if (!tgid_traced(BPF_CORE_READ(task, tgid)))
		return 0;
	/* Woken at once: the recorder looks for TLS libraries in the new
	 * program before it gets far. */
	emit_proc(EVENT_EXEC, task, tls_wake_exec);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);
	if (BPF_CORE_READ(task, pid) != tgid)
		return 0; /* a thread, not the process */
	if (!tgid_traced(tgid))
		return 0;
	emit_proc(EVENT_EXIT, task, 0);
	if (filter_pids)
		bpf_map_delete_elem(&traced_tgids, &tgid);
	return 0;
}

/* --- TLS libraries: uprobes -------------------------------------------------- */

/*
 * The registers a uprobe sees (x86-64 struct pt_regs, a stable user ABI
 * layout). TLS probes are attached on amd64 only; the loader never attaches
 * them elsewhere, so this one bpfel object still serves arm64.
 */
struct regs_x86 {
	__u64 r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

/* The attach cookie of a TLS uprobe: TLS_COOKIE(source, dir, out) where out
 * is the argument (1-based) holding the size_t * of the _ex variants. */
#define COOKIE_SOURCE(c) ((__u8)(c))
#define COOKIE_DIR(c) ((__u8)((c) >> 8))
#define COOKIE_OUT(c) ((__u8)((c) >> 16))

/* emit_tls writes the plaintext of a finished TLS call: n bytes at buf, on
 * fd (found with method flags), or drops it when the port filter says so. */
static __always_inline void emit_tls(__u64 id, __u64 start, __u64 ts, __u64 conn, __u64 buf, __u32 n, int fd,
				     __u8 flags, __u8 source, __u8 dir)
{
	__u32 gen = 0;
	struct sock *sk = tcp_sock_of_fd(fd);
	if (sk) {
		if (!ports_traced(sk))
			return;
		struct conn_val *cv = conn_of(id, fd, sk);
		if (cv) {
			/* Its ciphertext is recorded by length only: the
			 * plaintext is what is kept. */
			cv->class = CLASS_KEEP;
			gen = cv->gen;
		}
	} else {
		/* No fd, or the fd is no TCP socket now (closed meanwhile). */
		if (filter_ports)
			return;
		fd = -1;
		flags = DATA_FD_UNKNOWN;
	}
	struct call c = {
		.start_ns = start,
		.buf = buf,
		.count = n,
		.tls_conn = conn,
		.fd = fd,
		.kind = CALL_BUF,
		.source = source,
		.dir = dir,
		.flags = flags,
	};
	struct span sp = { .buf = buf, .ts = ts, .len = n, .gen = gen };
	emit_data(&c, &sp);
}

/*
 * Entry of SSL_read, SSL_read_ex, SSL_write, SSL_write_ex, SSL_write_ex2,
 * gnutls_record_recv and gnutls_record_send: (conn, buf, num[, flags], out).
 * The cookie says which library and direction.
 */
static __always_inline int tls_enter_body(struct regs_x86 *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (id >> 32 == self_tgid)
		return 0;
	struct thread *th = current_thread(true);
	if (!th || !thread_traced(th, id >> 32))
		return 0;
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 conn = ctx->di;
	if (th->tls_depth && th->tls.conn == conn && th->tls.dir == COOKIE_DIR(cookie)) {
		/* SSL_write_ex calling SSL_write_ex2, …: the outer call reports. */
		if (th->tls_depth < 255)
			th->tls_depth++;
		return 0;
	}
	struct tls_call t = {
		.start_ns = bpf_ktime_get_ns(),
		.conn = conn,
		.buf = ctx->si,
		.fd = -1,
		.source = COOKIE_SOURCE(cookie),
		.dir = COOKIE_DIR(cookie),
	};
	/* Both loaded first: the verifier refuses a ctx load at an offset the
	 * compiler would otherwise pick with a branch. */
	__u64 arg4 = ctx->cx, arg5 = ctx->r8;
	barrier_var(arg4);
	barrier_var(arg5);
	if (COOKIE_OUT(cookie) == 4)
		t.out = arg4;
	else if (COOKIE_OUT(cookie) == 5)
		t.out = arg5;
	th->tls = t;
	th->tls_depth = 1;
	return 0;
}

/* Return of the functions above: the plaintext is in buf now (reads) and the
 * length in the return value, or in *out for the _ex variants. */
static __always_inline int tls_exit_body(struct regs_x86 *ctx)
{
	struct thread *th = current_thread(false);
	if (!th || !th->tls_depth)
		return 0;
	if (--th->tls_depth > 0)
		return 0;
	struct tls_call t = th->tls;
	__u64 id = bpf_get_current_pid_tgid();

	struct tls_fd_key fk = { .tgid = id >> 32, .conn = t.conn };
	int fd = t.fd;
	__u8 flags = DATA_FD_NESTED;
	if (fd >= 0) {
		/* Remembered even for a call that moved nothing (EAGAIN). */
		bpf_map_update_elem(&tls_fds, &fk, &fd, BPF_ANY);
	} else {
		__s32 *cached = bpf_map_lookup_elem(&tls_fds, &fk);
		if (cached) {
			fd = *cached;
			flags = DATA_FD_CACHED;
		} else {
			flags = DATA_FD_UNKNOWN;
		}
	}
	int ret = (int)ctx->ax;
	__u64 n = 0;
	if (t.out) {
		if (ret != 1 || bpf_probe_read_user(&n, sizeof(n), (void *)t.out))
			return 0;
	} else {
		if (ret <= 0)
			return 0;
		n = ret;
	}
	if (n == 0 || n > 0x7fffffff)
		return 0;
	emit_tls(id, t.start_ns, bpf_ktime_get_ns(), t.conn, t.buf, n, fd, flags, t.source, t.dir);
	return 0;
}

/* --- Go crypto/tls: entry and RET uprobes ---------------------------------- */

/*
 * Go's register ABI (Go >= 1.17, amd64): (*Conn).Read/Write(b []byte) get the
 * receiver in RAX, b's pointer in RBX and length in RCX, and return n in RAX;
 * the running goroutine's g is in R14. A goroutine may move between threads,
 * so calls are keyed by (tgid, g), and return uprobes (which rewrite the
 * return address on the stack, which Go moves) are never used: the loader
 * puts a uprobe on every RET instruction instead.
 */
struct go_key {
	__u32 tgid;
	__u32 _pad;
	__u64 g;
};

struct go_call {
	__u64 start_ns;
	__u64 conn; /* *tls.Conn */
	__u64 buf;
	__u8 dir;
	__u8 _pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct go_key);
	__type(value, struct go_call);
} go_calls SEC(".maps");

/* go_conn_fd walks *tls.Conn -> conn (net.Conn interface) -> *net.TCPConn ->
 * *netFD -> pfd.Sysfd with the offsets the loader set; -1 when a read
 * fails. A conn that is no *net.TCPConn yields garbage, which the TCP socket
 * check in emit_tls turns away. */
static __always_inline int go_conn_fd(__u64 conn)
{
	__u64 tcpconn = 0, netfd = 0;
	__s64 sysfd = -1;
	if (bpf_probe_read_user(&tcpconn, sizeof(tcpconn), (void *)(conn + go_conn_iface_data)) || !tcpconn)
		return -1;
	if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)(tcpconn + go_tcpconn_fd)) || !netfd)
		return -1;
	if (bpf_probe_read_user(&sysfd, sizeof(sysfd), (void *)(netfd + go_netfd_sysfd)))
		return -1;
	if (sysfd < 0 || sysfd > 0x7fffffff)
		return -1;
	return sysfd;
}

static __always_inline int go_tls_enter_body(struct regs_x86 *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!tgid_traced(id >> 32))
		return 0;
	struct go_key k = { .tgid = id >> 32, .g = ctx->r14 };
	struct go_call c = {
		.start_ns = bpf_ktime_get_ns(),
		.conn = ctx->ax,
		.buf = ctx->bx,
		.dir = COOKIE_DIR(bpf_get_attach_cookie(ctx)),
	};
	if (bpf_map_update_elem(&go_calls, &k, &c, BPF_ANY))
		count_loss(LOSS_STATE);
	return 0;
}

static __always_inline int go_tls_ret_body(struct regs_x86 *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct go_key k = { .tgid = id >> 32, .g = ctx->r14 };
	struct go_call *p = bpf_map_lookup_elem(&go_calls, &k);
	if (!p)
		return 0;
	struct go_call c = *p;
	bpf_map_delete_elem(&go_calls, &k);
	__s64 n = ctx->ax;
	if (n <= 0 || n > 0x7fffffff)
		return 0;
	int fd = go_conn_fd(c.conn);
	/* A write is stamped with its entry: another goroutine (net/http's
	 * readLoop) may read the answer before the writer returns, and events
	 * are ordered by their timestamp. */
	__u64 ts = c.dir == DIR_EGRESS ? c.start_ns : bpf_ktime_get_ns();
	emit_tls(id, c.start_ns, ts, c.conn, c.buf, n, fd, fd >= 0 ? 0 : DATA_FD_UNKNOWN, SOURCE_GOTLS, c.dir);
	return 0;
}

/*
 * Each TLS program comes twice, with one body: attached one probe per link
 * (a perf event each, kernels >= 5.15 for the cookie), and attached with one
 * uprobe_multi link per file and program (kernels >= 6.6), which runs the
 * program straight from the uprobe instead of through a perf event. The
 * cookie and the registers are the same for both. The loader replaces the
 * .multi programs with stubs where the kernel lacks uprobe_multi.
 */
#define TLS_PROGRAM(sec, name)                            \
	SEC(sec) int name(struct regs_x86 *ctx)           \
	{                                                 \
		return name##_body(ctx);                  \
	}                                                 \
	SEC(sec ".multi") int name##_multi(struct regs_x86 *ctx) \
	{                                                 \
		return name##_body(ctx);                  \
	}

TLS_PROGRAM("uprobe", tls_enter)
TLS_PROGRAM("uretprobe", tls_exit)
TLS_PROGRAM("uprobe", go_tls_enter)
TLS_PROGRAM("uprobe", go_tls_ret)

/*
 * Packet capture: a socket filter on the recorder's AF_PACKET socket
 * (SOCK_DGRAM, so the packet starts at its network header). It writes the
 * IPv4 and IPv6 TCP packets of the traced ports, cut after the TCP header
 * plus packet_payload bytes, into the events ring as packet_events stamped
 * with bpf_ktime_get_ns, and returns 0: the socket itself never queues a
 * packet. So packets cost the recorder no recvmsg and no wake-up of their
 * own (they share the ring's batched wake-ups), and their timestamps are on
 * the syscalls' clock, with no realtime-to-monotonic mapping.
 * On loopback every packet passes the taps twice, once outgoing and once as
 * received: only the received copy is kept, as libpcap does.
 */
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define PACKET_OUTGOING 4

static __always_inline bool port_marked(__u32 port)
{
	__u8 *v = bpf_map_lookup_elem(&packet_ports, &port);
	return v && *v;
}

SEC("socket")
int packet_filter(struct __sk_buff *skb)
{
	if (skb->pkt_type == PACKET_OUTGOING && skb->ifindex == packet_lo_ifindex)
		return 0;
	__u16 proto = bpf_ntohs((__u16)skb->protocol);
	/* The IP header and the start of the TCP header (ports, sequence and
	 * acknowledgment numbers, data offset) are read with one load: the
	 * smallest IPv4 and IPv6 TCP packets hold them whole. */
	union {
		__u8 b[54];
		struct {
			__u8 vihl, tos;
			__be16 tot_len, id, frag;
			__u8 ttl, proto;
		} v4;
		struct {
			__u8 vtc[6];
			__u8 next;
		} v6;
	} h;
	__u32 l3;
	__u8 l4;
	if (proto == ETH_P_IP) {
		if (bpf_skb_load_bytes(skb, 0, &h, 40))
			return 0;
		if (bpf_ntohs(h.v4.frag) & 0x1fff)
			return 0; /* a later fragment: no TCP header */
		l3 = (h.v4.vihl & 0xf) * 4;
		if (l3 < 20)
			return 0;
		l4 = h.v4.proto;
	} else if (proto == ETH_P_IPV6) {
		if (bpf_skb_load_bytes(skb, 0, &h, 54))
			return 0;
		l3 = 40; /* extension headers are not followed */
		l4 = h.v6.next;
	} else {
		return 0;
	}
	if (l4 != IPPROTO_TCP)
		return 0;
	/* IPv4 options put the TCP header further than the load reached. */
	if (l3 > 20 && proto == ETH_P_IP && (l3 > 60 || bpf_skb_load_bytes(skb, l3, &h.b[20], 14)))
		return 0;
	struct {
		__be16 sport;
		__be16 dport;
		__be32 seq, ack;
		__u8 doff;
	} tcp;
	/* Constant offsets: the verifier refuses arithmetic on a stack pointer
	 * that the compiler would make of a variable one. */
	if (proto == ETH_P_IP)
		__builtin_memcpy(&tcp, &h.b[20], 13);
	else
		__builtin_memcpy(&tcp, &h.b[40], 13);
	if (packet_by_port && !port_marked(bpf_ntohs(tcp.sport)) && !port_marked(bpf_ntohs(tcp.dport)))
		return 0;
	__u8 doff = tcp.doff;
	__u32 keep = l3 + (doff >> 4) * 4 + packet_payload;
	if (keep > skb->len)
		keep = skb->len;
	if (keep > PACKET_MAX)
		keep = PACKET_MAX;
	struct packet_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_loss(LOSS_PACKET);
		return 0;
	}
	e->type = EVENT_PACKET;
	e->ifindex = skb->ifindex;
	e->ts_ns = bpf_ktime_get_ns();
	e->len = skb->len;
	e->protocol = proto;
	e->pkt_type = skb->pkt_type;
	e->cap = 0;
	if (keep > 0 && !bpf_skb_load_bytes(skb, 0, e->data, keep))
		e->cap = keep;
	__u64 unread = unread_bytes();
	bpf_ringbuf_submit(e, wakeup_flag(unread - ring_bytes(sizeof(*e)), ring_bytes(sizeof(*e))));
	return 0;
}
