/* The C init: runs the program the runtime compiled (runtime/cinit.go) for
 * a container whose init needs nothing the Go init alone does, and execs the
 * user's process before the Go runtime starts. The opcodes and the encoding
 * are cinit.go's. Every step names itself (the text the Go init puts before
 * its errors); a failure is that text and the errno, sent where the Go init
 * sends its errors: the sync socket until the exec fifo is open, then the
 * fifo. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#define B_RESOLVE_NO_MAGICLINKS 0x02
#define B_RESOLVE_NO_SYMLINKS 0x04
#define B_RESOLVE_BENEATH 0x08
#define B_RESOLVE_IN_ROOT 0x10
#define IN_ROOT (B_RESOLVE_IN_ROOT | B_RESOLVE_NO_MAGICLINKS)
#define B_OPEN_TREE_CLONE 1
#define B_AT_RECURSIVE 0x8000
#ifndef MOUNT_ATTR_RDONLY /* glibc's sys/mount.h has it, musl's not */
#define MOUNT_ATTR_RDONLY 0x00000001
#endif
#define B_MOVE_MOUNT_F_EMPTY_PATH 0x04
#define B_MOVE_MOUNT_T_EMPTY_PATH 0x40
#define B_CLOSE_RANGE_CLOEXEC 4
#define B_KEYCTL_JOIN_SESSION_KEYRING 1

enum {
	opWrite = 1, opUnshare, opSetsid, opHostname, opDomainname, opMount, opOpenRoot,
	opNewInRoot, opBindInRoot, opCgroupBind, opMknodInRoot, opSymlink, opSetattrRoot,
	opPivot, opReadonly, opMask, opSetattr, opRlimit, opKeyring, opChdir, opReady,
	opFifo, opSeccomp, opPrctl, opCapBSet, opSetgroups, opSetresgid, opSetresuid,
	opCapset, opAmbient, opWarn, opUmask, opCloseRange, opExec, opTrace, opHooks,
	opMkdir,
};

struct b_open_how { uint64_t flags, mode, resolve; };
struct b_mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };

static const unsigned char *pc, *pend;
static const char *what = "berth init";
static int sync_fd = -1, fifo_fd = -1, root_fd = -1, tracing;
static char msgbuf[8192];

/* Go's texts for errnos are glibc's with a lower-case first letter. */
static const char *errtext(int err) {
	static char buf[256];
	snprintf(buf, sizeof buf, "%s", strerror(err));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] += 'a' - 'A';
	return buf;
}

static size_t uvarint(unsigned char *b, uint64_t v) {
	size_t n = 0;
	while (v >= 0x80) {
		b[n++] = (unsigned char)v | 0x80;
		v >>= 7;
	}
	b[n++] = (unsigned char)v;
	return n;
}

/* syncmsg sends a syncMsg{Type, Error} in the runtime's wire form. */
static int syncmsg(const char *type, const char *err) {
	static unsigned char b[sizeof msgbuf + 32];
	size_t tl = strlen(type), el = strlen(err), n = 0;
	n += uvarint(b + n, tl);
	memcpy(b + n, type, tl);
	n += tl;
	n += uvarint(b + n, el);
	memcpy(b + n, err, el);
	n += el;
	return write(sync_fd, b, n) == (ssize_t)n ? 0 : -1;
}

/* die ends the init even when a seccomp filter answers exit_group with an
 * errno (libc's _exit would retry it forever): a trap's SIGILL is forced to
 * its default action, which needs no syscall. */
static void __attribute__((noreturn)) die(int code) {
	syscall(SYS_exit_group, code);
	__builtin_trap();
}

static void __attribute__((noreturn)) fail_msg(const char *msg) {
	if (fifo_fd >= 0) {
		if (write(fifo_fd, msg, strlen(msg)) < 0) {
		}
	} else if (sync_fd < 0 || syncmsg("error", msg) < 0) {
		fprintf(stderr, "berth init: %s\n", msg);
	}
	die(1);
}

static void __attribute__((noreturn)) fail(int err) {
	snprintf(msgbuf, sizeof msgbuf, "%s: %s", what, errtext(err));
	fail_msg(msgbuf);
}

/* failx is fail with a detail between the step and the errno. */
static void __attribute__((noreturn)) failx(const char *detail, const char *arg, int err) {
	snprintf(msgbuf, sizeof msgbuf, "%s: %s%s: %s", what, detail, arg, errtext(err));
	fail_msg(msgbuf);
}

static void trace(const char *step) {
	struct timespec ts, cpu;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	fprintf(stderr, "trace %12.3fms %7d cpu %7.3fms %s\n", ts.tv_sec * 1e3 + ts.tv_nsec / 1e6,
		(int)getpid(), cpu.tv_sec * 1e3 + cpu.tv_nsec / 1e6, step);
}

static void __attribute__((noreturn)) malformed(void) {
	what = "berth init";
	fail_msg("berth init: malformed program from the runtime");
}

static uint64_t u32(void) {
	if (pend - pc < 4)
		malformed();
	uint32_t v = pc[0] | pc[1] << 8 | pc[2] << 16 | (uint32_t)pc[3] << 24;
	pc += 4;
	return v;
}

static uint64_t gint(void) {
	if (pend - pc < 8)
		malformed();
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)pc[i] << (8 * i);
	pc += 8;
	return v;
}

static const char *gstr_len(size_t *lenp) {
	uint64_t n = u32();
	if ((uint64_t)(pend - pc) < n + 1 || pc[n] != 0)
		malformed();
	const char *s = (const char *)pc;
	pc += n + 1;
	if (lenp)
		*lenp = n;
	return s;
}

static const char *gstr(void) { return gstr_len(NULL); }

static char **glist(void) {
	uint64_t n = u32();
	if (n > (uint64_t)(pend - pc))
		malformed();
	char **v = calloc(n + 1, sizeof *v);
	if (v == NULL)
		fail(ENOMEM);
	for (uint64_t i = 0; i < n; i++)
		v[i] = (char *)gstr();
	return v;
}

static int openat2_(int dirfd, const char *p, uint64_t flags, uint64_t resolve) {
	struct b_open_how how = {flags | O_PATH | O_CLOEXEC, 0, resolve};
	for (int i = 0;; i++) {
		int fd = syscall(SYS_openat2, dirfd, p, &how, sizeof how);
		if (fd < 0 && ((errno == EAGAIN && i < 32) || errno == EINTR))
			continue;
		return fd;
	}
}

static const char *procfd(int fd) {
	static char b[64];
	snprintf(b, sizeof b, "/proc/self/fd/%d", fd);
	return b;
}

static int setattr_fd(int fd, const char *p, unsigned flags, uint64_t set, uint64_t clr) {
	struct b_mount_attr a = {set, clr, 0, 0};
	return syscall(SYS_mount_setattr, fd, p, flags, &a, sizeof a);
}

/* create_in_root opens p (absolute, clean) in the root, making it (a
 * directory, or an empty file) and any missing parents; what already exists
 * is resolved with RESOLVE_IN_ROOT, what it makes is reopened without
 * following symlinks: as rootfs.createFast. */
static int create_in_root(const char *p, int dir) {
	int fd = openat2_(root_fd, p, 0, IN_ROOT);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	char buf[4096];
	if (strlen(p) >= sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(buf, p);
	char *slash = strrchr(buf, '/');
	if (slash == NULL || slash[1] == '\0') {
		errno = EINVAL;
		return -1;
	}
	const char *base = slash + 1, *parent = "/";
	if (slash != buf) {
		*slash = '\0';
		parent = buf;
	}
	int pfd = openat2_(root_fd, parent, O_DIRECTORY, IN_ROOT);
	if (pfd < 0 && errno == ENOENT && strcmp(parent, "/") != 0)
		pfd = create_in_root(parent, 1);
	if (pfd < 0)
		return -1;
	int r = dir ? mkdirat(pfd, base, 0755) : mknodat(pfd, base, S_IFREG | 0644, 0);
	if (r < 0 && !(dir && errno == EEXIST)) {
		int e = errno;
		close(pfd);
		errno = e;
		return -1;
	}
	fd = openat2_(pfd, base, O_NOFOLLOW | (dir ? O_DIRECTORY : 0),
		      B_RESOLVE_BENEATH | B_RESOLVE_NO_SYMLINKS | B_RESOLVE_NO_MAGICLINKS);
	int e = errno;
	close(pfd);
	errno = e;
	return fd;
}

static int create_or_fail(const char *p, int dir) {
	int fd = create_in_root(p, dir);
	if (fd < 0)
		failx("create in root ", p, errno);
	return fd;
}

/* bind_in_root binds src (a host path) onto dest in the root: open_tree,
 * mount_setattr of what the spec names, move_mount onto the handle. */
static void bind_in_root(const char *dest, const char *src, int rec, uint64_t set, uint64_t clr, char **prop) {
	int tree = syscall(SYS_open_tree, AT_FDCWD, src, B_OPEN_TREE_CLONE | O_CLOEXEC | (rec ? B_AT_RECURSIVE : 0));
	if (tree < 0)
		failx(errno == ENOENT ? "bind source: open_tree " : "open_tree ", src, errno);
	struct stat st;
	if (fstat(tree, &st) < 0)
		failx("bind source", "", errno);
	int d = create_or_fail(dest, S_ISDIR(st.st_mode));
	if ((set || clr) && setattr_fd(tree, "", AT_EMPTY_PATH, set, clr) < 0)
		failx("mount_setattr", "", errno);
	if (syscall(SYS_move_mount, tree, "", d, "", B_MOVE_MOUNT_F_EMPTY_PATH | B_MOVE_MOUNT_T_EMPTY_PATH) < 0)
		failx("move_mount", "", errno);
	/* tree is the attached mount now */
	for (; prop && *prop; prop++)
		if (mount("", procfd(tree), "", strtoul(*prop, NULL, 10), NULL) < 0)
			failx("set propagation", "", errno);
	close(tree);
	close(d);
}

/* same_set compares comma-separated lists as sets. */
static int same_set(const char *a, size_t al, const char *b, size_t bl) {
	int na = 0, nb = 0;
	for (size_t i = 0; i <= al; i++)
		na += i == al || a[i] == ',';
	for (size_t i = 0; i <= bl; i++)
		nb += i == bl || b[i] == ',';
	if (al == 0 || bl == 0)
		return al == bl;
	if (na != nb)
		return 0;
	for (size_t s = 0; s < al;) {
		size_t e = s;
		while (e < al && a[e] != ',')
			e++;
		int found = 0;
		for (size_t t = 0; t < bl && !found;) {
			size_t f = t;
			while (f < bl && b[f] != ',')
				f++;
			found = f - t == e - s && memcmp(a + s, b + t, e - s) == 0;
			t = f + 1;
		}
		if (!found)
			return 0;
		s = e + 1;
	}
	return 1;
}

/* cgroup_bind binds this process's own cgroup in the hierarchy that
 * /proc/self/cgroup lists with controllers (mounted at mountpoint, showing
 * mroot) onto dest in the root. */
static void cgroup_bind(const char *dest, const char *ctl, const char *mountpoint, const char *mroot, uint64_t set, uint64_t clr) {
	static char own[8192];
	static ssize_t ownlen = -1;
	if (ownlen < 0) {
		int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
		if (fd < 0 || (ownlen = read(fd, own, sizeof own - 1)) < 0)
			failx("read ", "/proc/self/cgroup", errno);
		own[ownlen] = '\0';
		close(fd);
	}
	const char *path = NULL;
	size_t plen = 0;
	for (char *line = own; *line;) {
		char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char *c1 = memchr(line, ':', len);
		char *c2 = c1 ? memchr(c1 + 1, ':', len - (c1 + 1 - line)) : NULL;
		if (c2 && same_set(c1 + 1, c2 - c1 - 1, ctl, strlen(ctl))) {
			path = c2 + 1;
			plen = len - (c2 + 1 - line);
			break;
		}
		line += len + (nl != NULL);
	}
	if (path == NULL)
		failx("not in /proc/self/cgroup: ", ctl, ENOENT);
	char rel[4096], src[8192];
	snprintf(rel, sizeof rel, "%.*s", (int)plen, path);
	const char *r = rel;
	size_t rl = strlen(mroot);
	if (strcmp(mroot, "/") != 0) {
		if (strncmp(rel, mroot, rl) != 0 || (rel[rl] != '\0' && rel[rl] != '/'))
			failx("own cgroup outside the host mount ", mountpoint, EINVAL);
		r = rel + rl;
	}
	snprintf(src, sizeof src, "%s%s", mountpoint, strcmp(r, "/") == 0 ? "" : r);
	bind_in_root(dest, src, 0, set, clr, NULL);
}

static void pivot(const char *root) {
	int old = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (old < 0)
		failx("open old root", "", errno);
	int nw = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (nw < 0)
		failx("open new root", "", errno);
	if (fchdir(nw) < 0)
		failx("chdir to new root", "", errno);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		fail(errno);
	if (fchdir(old) < 0)
		failx("chdir to old root", "", errno);
	if (mount("", ".", "", MS_SLAVE | MS_REC, NULL) < 0)
		failx("make old root rslave", "", errno);
	if (umount2(".", MNT_DETACH) < 0)
		failx("detach old root", "", errno);
	if (chdir("/") < 0)
		failx("chdir /", "", errno);
	close(old);
	close(nw);
	if (root_fd >= 0)
		close(root_fd);
	root_fd = -1;
}

/* write_file is os.WriteFile of an existing file, failing as it words it. */
static void write_file(const char *p, const char *data, size_t len) {
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		failx("open ", p, errno);
	if (write(fd, data, len) < 0)
		failx("write ", p, errno);
	close(fd);
}

/* uvarint_get reads a varint at *p (before end), or fails. */
static uint64_t uvarint_get(const unsigned char **p, const unsigned char *end) {
	uint64_t v = 0;
	for (int s = 0; *p < end && s < 64; s += 7) {
		unsigned char c = *(*p)++;
		v |= (uint64_t)(c & 0x7f) << s;
		if (!(c & 0x80))
			return v;
	}
	malformed();
}

/* hooks tells the parent the rootfs is made and waits while it sets the
 * limits and runs its hooks: a syncMsg back, "hooks-done" or "error". */
static void hooks(void) {
	static unsigned char b[1 << 16];
	if (syncmsg("hooks", "") < 0)
		fail(errno);
	ssize_t n;
	while ((n = read(sync_fd, b, sizeof b)) < 0 && errno == EINTR)
		;
	if (n < 0)
		fail(errno);
	if (n == 0)
		fail(EPIPE);
	const unsigned char *p = b, *end = b + n;
	uint64_t tl = uvarint_get(&p, end);
	if ((uint64_t)(end - p) < tl)
		malformed();
	const unsigned char *type = p;
	p += tl;
	uint64_t el = uvarint_get(&p, end);
	if ((uint64_t)(end - p) < el)
		malformed();
	if (tl == 5 && memcmp(type, "error", 5) == 0) {
		snprintf(msgbuf, sizeof msgbuf, "%.*s", (int)el, (const char *)p);
		fail_msg(msgbuf);
	}
}

static int is_exec(const char *p) {
	struct stat st;
	if (stat(p, &st) < 0)
		return errno;
	if (S_ISDIR(st.st_mode))
		return EISDIR;
	if ((st.st_mode & 0111) == 0)
		return EACCES;
	return 0;
}

/* home finds uid's home in the container's /etc/passwd, or "/". */
static const char *home(uint64_t uid) {
	static char out[4096];
	int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return "/";
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	for (ssize_t r; buf != NULL; n += r) {
		if (n + 1 == cap && (buf = realloc(buf, cap *= 2)) == NULL)
			break;
		if ((r = read(fd, buf + n, cap - n - 1)) <= 0)
			break;
	}
	close(fd);
	if (buf == NULL || n == 0)
		return "/";
	buf[n] = '\0';
	char want[32];
	snprintf(want, sizeof want, "%llu", (unsigned long long)uid);
	for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[7] = {0};
		int nf = 0;
		f[nf++] = line;
		for (char *c = line; *c && nf < 7; c++)
			if (*c == ':') {
				*c = '\0';
				f[nf++] = c + 1;
			}
		if (nf >= 6 && strcmp(f[2], want) == 0) {
			snprintf(out, sizeof out, "%s", f[5]);
			return out;
		}
	}
	return "/";
}

/* The user's process starts with every signal at its default action and
 * none blocked, whatever its parents ignored: execve keeps ignored
 * signals, a shim ignores SIGTERM, SIGHUP, SIGINT and SIGPIPE, and a
 * non-interactive shell cannot trap a signal ignored when it started. */
static void reset_signals(void) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL); /* glibc's reserved ones fail: fine */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static void __attribute__((noreturn)) do_exec(char **args, char **env, uint64_t uid) {
	const char *file = args[0];
	char found[8192];
	if (strchr(file, '/')) {
		int e = is_exec(file);
		if (e == EACCES)
			snprintf(msgbuf, sizeof msgbuf, "exec: \"%s\": permission denied", file);
		else if (e)
			snprintf(msgbuf, sizeof msgbuf, "exec: \"%s\": stat %s: %s", file, file, errtext(e));
		if (e)
			fail_msg(msgbuf);
		snprintf(found, sizeof found, "%s", file);
	} else {
		const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
		for (char **e = env; *e; e++)
			if (strncmp(*e, "PATH=", 5) == 0)
				path = *e + 5;
		int ok = 0;
		for (const char *s = path;; s++) {
			const char *e = strchrnul(s, ':');
			if (e == s)
				snprintf(found, sizeof found, "%s", file);
			else
				snprintf(found, sizeof found, "%.*s/%s", (int)(e - s), s, file);
			if (is_exec(found) == 0) {
				ok = 1;
				break;
			}
			if (*e == '\0')
				break;
			s = e;
		}
		if (!ok) {
			snprintf(msgbuf, sizeof msgbuf, "exec: \"%s\": executable file not found in $PATH", file);
			fail_msg(msgbuf);
		}
	}
	int n = 0, has_home = 0;
	for (; env[n]; n++)
		has_home |= strncmp(env[n], "HOME=", 5) == 0;
	if (!has_home) {
		char **e2 = calloc(n + 2, sizeof *e2);
		static char h[4200];
		memcpy(e2, env, n * sizeof *e2);
		snprintf(h, sizeof h, "HOME=%s", home(uid));
		e2[n] = h;
		env = e2;
	}
	reset_signals();
	if (tracing)
		trace("init(C): exec");
	execve(found, args, env);
	snprintf(msgbuf, sizeof msgbuf, "exec \"%s\": %s", file, errtext(errno));
	fail_msg(msgbuf);
}

/* mkdir_parents makes p and what is missing above it (mkdir -p). */
static int mkdir_parents(const char *p, mode_t mode) {
	char buf[4096];
	size_t n = strlen(p);
	if (n >= sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, p, n + 1);
	for (char *q = buf + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -1;
		*q = '/';
	}
	return mkdir(buf, mode) < 0 && errno != EEXIST ? -1 : 0;
}

/* run runs the program to its end: an exec, or for a prelude (prep) its
 * last step. */
static void run(int prep) {
	while (pc < pend) {
		int op = *pc++;
		what = gstr();
		switch (op) {
		case opWrite: {
			const char *p = gstr();
			size_t len;
			const char *data = gstr_len(&len);
			write_file(p, data, len);
			break;
		}
		case opUnshare:
			if (unshare(gint()) < 0)
				fail(errno);
			break;
		case opSetsid:
			if (setsid() < 0 && errno != EPERM)
				fail(errno);
			break;
		case opHostname: {
			size_t len;
			const char *s = gstr_len(&len);
			if (sethostname(s, len) < 0)
				fail(errno);
			break;
		}
		case opDomainname: {
			size_t len;
			const char *s = gstr_len(&len);
			if (setdomainname(s, len) < 0)
				fail(errno);
			break;
		}
		case opMount: {
			const char *src = gstr(), *tgt = gstr(), *fs = gstr();
			unsigned long flags = gint();
			const char *data = gstr();
			if (mount(src, tgt, fs, flags, *data ? data : NULL) < 0)
				fail(errno);
			break;
		}
		case opOpenRoot:
			root_fd = open(gstr(), O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (root_fd < 0)
				fail(errno);
			break;
		case opNewInRoot: {
			const char *dest = gstr(), *src = gstr(), *fs = gstr();
			unsigned long flags = gint();
			const char *data = gstr();
			int d = create_or_fail(dest, 1);
			if (mount(src, procfd(d), fs, flags, *data ? data : NULL) < 0)
				fail(errno);
			close(d);
			break;
		}
		case opBindInRoot: {
			const char *dest = gstr(), *src = gstr();
			int rec = gint();
			uint64_t set = gint(), clr = gint();
			char **prop = glist();
			bind_in_root(dest, src, rec, set, clr, prop);
			free(prop);
			break;
		}
		case opCgroupBind: {
			const char *dest = gstr(), *ctl = gstr(), *mp = gstr(), *mroot = gstr();
			uint64_t set = gint(), clr = gint();
			int fresh = gint();
			const char *fs = gstr();
			unsigned long flags = gint();
			const char *data = gstr();
			if (fresh) {
				/* in a cgroup namespace: the hierarchy itself, rooted at our cgroup */
				int d = create_or_fail(dest, 1);
				int r = mount("cgroup", procfd(d), fs, flags, *data ? data : NULL);
				int e = errno;
				close(d);
				if (r == 0)
					break;
				fprintf(stderr, "berth rootfs: mount %s at %s in cgroup namespace: %s; binding the host directory instead\n", fs, dest, errtext(e));
			}
			cgroup_bind(dest, ctl, mp, mroot, set, clr);
			break;
		}
		case opMknodInRoot:
		case opSymlink: {
			const char *a = gstr(), *p = op == opSymlink ? gstr() : a;
			char dir[4096];
			snprintf(dir, sizeof dir, "%s", p);
			char *slash = strrchr(dir, '/');
			if (slash == NULL)
				malformed();
			const char *base = slash + 1;
			if (slash == dir)
				dir[1] = '\0';
			else
				*slash = '\0';
			int dfd = create_or_fail(dir, 1);
			base = p + (base - dir);
			if (op == opSymlink) {
				if (symlinkat(a, dfd, base) < 0 && errno != EEXIST)
					fail(errno);
				close(dfd);
				break;
			}
			mode_t mode = gint();
			dev_t dev = gint();
			uid_t uid = gint();
			gid_t gid = gint();
			/* a file, not /proc/self/fd: O_PATH fds of the dir only */
			if (mknodat(dfd, base, mode, dev) < 0) {
				if (errno != EEXIST || (unlinkat(dfd, base, 0) < 0 && errno != ENOENT) || mknodat(dfd, base, mode, dev) < 0)
					fail(errno);
			}
			if (fchmodat(dfd, base, mode & 07777, 0) < 0 || fchownat(dfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
				fail(errno);
			close(dfd);
			break;
		}
		case opSetattrRoot: {
			const char *dest = gstr();
			uint64_t set = gint();
			int fd = openat2_(root_fd, dest, 0, IN_ROOT);
			if (fd < 0 || setattr_fd(fd, "", AT_EMPTY_PATH, set, 0) < 0)
				fail(errno);
			close(fd);
			break;
		}
		case opPivot:
			pivot(gstr());
			break;
		case opReadonly:
		case opMask: {
			const char *p = gstr();
			int fd = open(p, O_PATH | O_CLOEXEC);
			if (fd < 0) {
				if (errno == ENOENT)
					break;
				fail(errno);
			}
			char self[64];
			snprintf(self, sizeof self, "%s", procfd(fd));
			if (op == opReadonly) {
				if (mount(self, self, NULL, MS_BIND | MS_REC, NULL) < 0)
					failx("bind", "", errno);
				if (setattr_fd(AT_FDCWD, p, B_AT_RECURSIVE | AT_NO_AUTOMOUNT, MOUNT_ATTR_RDONLY, 0) < 0)
					fail(errno);
			} else {
				struct stat st;
				if (fstat(fd, &st) < 0)
					fail(errno);
				int r = S_ISDIR(st.st_mode)
						? mount("tmpfs", self, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=755")
						: mount("/dev/null", self, NULL, MS_BIND, NULL);
				if (r < 0)
					fail(errno);
			}
			close(fd);
			break;
		}
		case opSetattr: {
			const char *p = gstr();
			if (setattr_fd(AT_FDCWD, p, AT_NO_AUTOMOUNT, gint(), 0) < 0)
				fail(errno);
			break;
		}
		case opRlimit: {
			int res = gint();
			struct rlimit rl;
			rl.rlim_cur = gint();
			rl.rlim_max = gint();
			if (setrlimit(res, &rl) < 0)
				fail(errno);
			break;
		}
		case opKeyring:
			if (syscall(SYS_keyctl, B_KEYCTL_JOIN_SESSION_KEYRING, gstr()) < 0 && errno != ENOSYS)
				fail(errno);
			break;
		case opChdir: {
			const char *p = gstr();
			int soft = gint();
			if (chdir(p) < 0 && !(soft && (errno == EACCES || errno == EPERM)))
				failx("chdir ", p, errno);
			break;
		}
		case opReady:
			if (syncmsg("ready", "") < 0)
				fail(errno);
			close(sync_fd);
			sync_fd = -1;
			break;
		case opFifo: {
			int fd = gint();
			fifo_fd = open(procfd(fd), O_WRONLY | O_CLOEXEC);
			if (fifo_fd < 0)
				fail(errno);
			close(fd);
			break;
		}
		case opSeccomp: {
			size_t len;
			const char *prog = gstr_len(&len);
			unsigned flags = gint();
			struct sock_filter *f = malloc(len + 1);
			if (f == NULL || len % 8 != 0 || len / 8 > 0xffff)
				malformed();
			memcpy(f, prog, len);
			struct sock_fprog fp = {(unsigned short)(len / 8), f};
			if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fp) < 0)
				fail(errno);
			free(f);
			break;
		}
		case opPrctl: {
			int option = gint();
			unsigned long arg = gint();
			if (prctl(option, arg, 0, 0, 0) < 0)
				fail(errno);
			break;
		}
		case opCapBSet: {
			uint64_t keep = gint();
			int last = gint();
			for (int i = 0; i <= last; i++)
				if (!(keep & (1ULL << i)) && prctl(PR_CAPBSET_DROP, i, 0, 0, 0) < 0 && errno != EINVAL)
					fail(errno);
			break;
		}
		case opSetgroups: {
			char **l = glist();
			int n = 0;
			while (l[n])
				n++;
			gid_t *g = calloc(n + 1, sizeof *g);
			for (int i = 0; i < n; i++)
				g[i] = strtoul(l[i], NULL, 10);
			/* the raw call: this thread alone (the process has no other) */
			if (syscall(SYS_setgroups, n, g) < 0)
				fail(errno);
			free(g);
			free(l);
			break;
		}
		case opSetresgid: {
			gid_t g = gint();
			if (syscall(SYS_setresgid, g, g, g) < 0)
				fail(errno);
			break;
		}
		case opSetresuid: {
			uid_t u = gint();
			if (syscall(SYS_setresuid, u, u, u) < 0)
				fail(errno);
			break;
		}
		case opCapset: {
			uint64_t e = gint(), p = gint(), i = gint();
			struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
			struct __user_cap_data_struct d[2] = {
				{(uint32_t)e, (uint32_t)p, (uint32_t)i},
				{(uint32_t)(e >> 32), (uint32_t)(p >> 32), (uint32_t)(i >> 32)},
			};
			if (syscall(SYS_capset, &h, d) < 0)
				fail(errno);
			break;
		}
		case opAmbient:
			if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long)gint(), 0, 0) < 0)
				fail(errno);
			break;
		case opWarn:
			fputs(what, stderr);
			break;
		case opUmask:
			umask(gint());
			break;
		case opCloseRange: {
			unsigned first = gint();
			if (syscall(SYS_close_range, first, ~0U, B_CLOSE_RANGE_CLOEXEC) < 0) {
				long max = sysconf(_SC_OPEN_MAX);
				for (long fd = first; fd < max; fd++)
					fcntl(fd, F_SETFD, FD_CLOEXEC);
			}
			break;
		}
		case opExec: {
			char **args = glist(), **env = glist();
			if (args[0] == NULL)
				malformed();
			do_exec(args, env, gint());
		}
		case opTrace:
			if (tracing)
				trace(what);
			break;
		case opHooks:
			hooks();
			break;
		case opMkdir: {
			const char *p = gstr();
			mode_t mode = gint();
			if (mkdir(p, mode) < 0 && errno != EEXIST && (errno != ENOENT || mkdir_parents(p, mode) < 0))
				fail(errno);
			break;
		}
		default:
			malformed();
		}
	}
	if (!prep)
		malformed();
}

static void read_full(int fd, void *p, size_t n) {
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			fail_msg("berth init: read config: unexpected end");
		got += r;
	}
}

/* berth_cinit runs in the init's constructor when the runtime offered the C
 * init (_BERTH_CINIT): the config pipe then starts with "BCI1" and a
 * program, which never returns, or "BGO1", after which the Go init reads
 * its config as usual. */
void berth_cinit(void) {
	const char *offer = getenv("_BERTH_CINIT"), *pipe = getenv("_BERTH_INITPIPE");
	if (offer == NULL || pipe == NULL)
		return;
	unsetenv("_BERTH_CINIT");
	tracing = getenv("BERTH_TRACE") != NULL;
	int fd = atoi(pipe);
	char magic[4];
	/* "BCG1": a prelude (making and joining the container's cgroups),
	 * sent as soon as the init is on its way, run while the runtime
	 * readies the rest. */
	for (;;) {
		read_full(fd, magic, sizeof magic);
		if (memcmp(magic, "BCG1", 4) != 0)
			break;
		unsigned char lb[4];
		read_full(fd, lb, sizeof lb);
		uint32_t len = lb[0] | lb[1] << 8 | lb[2] << 16 | (uint32_t)lb[3] << 24;
		unsigned char *pre = malloc(len ? len : 1);
		if (pre == NULL)
			fail_msg("berth init: out of memory");
		read_full(fd, pre, len);
		pc = pre;
		pend = pre + len;
		sync_fd = gint();
		run(1);
		free(pre);
	}
	if (memcmp(magic, "BGO1", 4) == 0)
		return;
	if (memcmp(magic, "BCI1", 4) != 0)
		fail_msg("berth init: read config: bad magic");
	size_t cap = 1 << 16, len = 0;
	unsigned char *buf = malloc(cap);
	for (;;) {
		if (buf == NULL)
			fail_msg("berth init: out of memory");
		if (len == cap)
			buf = realloc(buf, cap *= 2);
		if (buf == NULL)
			continue;
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail_msg("berth init: read config failed");
		if (n == 0)
			break;
		len += n;
	}
	close(fd);
	pc = buf;
	pend = buf + len;
	sync_fd = gint();
	run(0);
}
