#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static void die(const char *what, const char *path) {
	fprintf(stderr, "berth init: %s %s: %s\n", what, path, strerror(errno));
	_exit(1);
}

/* Makes the new namespaces in _BERTH_UNSHARE (clone flags, decimal): the
 * parent leaves the costly ones (a network namespace is most of a clone's
 * time) to the init, which makes them while the parent gets its config
 * ready, instead of the parent waiting in clone. Before any join, as clone
 * would have made them. */
static void berth_unshare(void) {
	const char *env = getenv("_BERTH_UNSHARE");
	if (env == NULL || *env == '\0')
		return;
	char *end = NULL;
	long flags = strtol(env, &end, 10);
	if (*end != '\0' || flags <= 0)
		die("unshare: malformed flags", env);
	if (unshare((int)flags) < 0)
		die("unshare", env);
	unsetenv("_BERTH_UNSHARE");
}

/* A spare init (runtime/spare.go) waits here, before anything else, for
 * what a fork would have given it: one message on the socket in
 * _BERTH_SPARE, "BSP1" and NUL-separated KEY=value settings for its
 * environment, with the files (SCM_RIGHTS) that become its descriptors
 * 0, 1, 2, ... in order; every other descriptor is closed. EOF (a spare
 * discarded, or its owner gone) ends it quietly. */
#define SPARE_MAX_FDS 64
static char spare_env[16384];

void berth_spare(void) {
	const char *env = getenv("_BERTH_SPARE");
	if (env == NULL)
		return;
	int sock = atoi(env);
	unsetenv("_BERTH_SPARE");
	/* The namespaces every container of the defaults has new, made while
	 * it waits. */
	const char *pre = getenv("_BERTH_SPARE_UNSHARE");
	if (pre != NULL) {
		if (unshare(atoi(pre)) < 0)
			die("spare: unshare", pre);
		unsetenv("_BERTH_SPARE_UNSHARE");
	}
	char control[CMSG_SPACE(sizeof(int) * SPARE_MAX_FDS)];
	struct iovec iov = {spare_env, sizeof spare_env - 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
	ssize_t n;
	while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (n <= 0)
		_exit(0);
	if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || n < 4 || memcmp(spare_env, "BSP1", 4) != 0) {
		errno = EPROTO;
		die("spare: malformed message", "");
	}
	spare_env[n] = '\0';
	int fds[SPARE_MAX_FDS], nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (int i = 0; i < k && nfds < SPARE_MAX_FDS; i++)
			memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	close(sock);
	/* Out of the way of the numbers they take, then into place (dup2
	 * clears close-on-exec), then nothing else stays open. */
	for (int i = 0; i < nfds; i++) {
		int high = fcntl(fds[i], F_DUPFD_CLOEXEC, SPARE_MAX_FDS);
		if (high < 0)
			die("spare: dup", "");
		close(fds[i]);
		fds[i] = high;
	}
	for (int i = 0; i < nfds; i++) {
		if (dup2(fds[i], i) < 0)
			die("spare: dup2", "");
	}
	if (syscall(SYS_close_range, nfds, ~0U, 0) < 0) {
		for (int fd = nfds; fd < SPARE_MAX_FDS * 2; fd++)
			close(fd);
	}
	for (char *kv = spare_env + 4; kv < spare_env + n; kv += strlen(kv) + 1) {
		char *eq = strchr(kv, '=');
		if (eq == NULL)
			continue;
		*eq = '\0';
		if (setenv(kv, eq + 1, 1) < 0)
			die("spare: setenv", kv);
	}
}

/* The runtime's CLI (`berth runtime [flags] run|create ...`, or the same
 * as berth-runtime) starts its spare init here, before the Go runtime: the
 * spare's exec and start, and the namespaces it makes, then overlap with
 * the CLI's own start (~2 ms of Go runtime and package inits) instead of
 * following it. runtime.CLISpare hands it to create, which adopts or
 * discards it (runtime/spare.go); unused, it ends when the CLI does. Only
 * on hosts with v1 controllers (on v2 the init is cloned into its
 * cgroup) and when the read-only view of the binary the init runs from is
 * in place (the first create makes it). */
static int cli_spare_pid = -1, cli_spare_fd = -1;
static char cli_spare_exe[4096];

/* A run or create CLI gives the Go runtime's sysmon thread a timer slack
 * of 10 ms. Sysmon polls every 20 us at first (70 us with the usual 50 us
 * slack), and on two CPUs each of its wakeups preempted the container's
 * init or the CLI's main thread: about 0.6 ms of a 6.5 ms `berth runtime
 * run` here. With the slack it sleeps through a create as it does once
 * the process idles (its longest poll is 10 ms); nothing waits on it
 * then (a runnable goroutine is taken by another thread, not handed over
 * by sysmon, with two CPUs or more). Sysmon is the first thread the Go
 * runtime makes (runtime.main, before anything else starts): the linker
 * sends the runtime's pthread_create here (-Wl,--wrap, nsenter.go), and
 * only that thread is born with the raised slack. No other thread's
 * slack changes, so every process berth starts keeps its own. */
static int sysmon_slack;

int __real_pthread_create(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*f)(void *), void *arg) {
	if (!__atomic_exchange_n(&sysmon_slack, 0, __ATOMIC_RELAXED))
		return __real_pthread_create(t, a, f, arg);
	long old = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	if (old <= 0 || prctl(PR_SET_TIMERSLACK, 10000000UL, 0, 0, 0) < 0)
		return __real_pthread_create(t, a, f, arg);
	int r = __real_pthread_create(t, a, f, arg);
	prctl(PR_SET_TIMERSLACK, (unsigned long)old, 0, 0, 0);
	return r;
}

static int cmdline(char *buf, size_t cap, char **argv, int max) {
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n <= 0 || (size_t)n == cap - 1)
		return 0; /* a command line too long to be the common case */
	buf[n] = '\0';
	int argc = 0;
	for (char *p = buf; p < buf + n && argc < max; p += strlen(p) + 1)
		argv[argc++] = p;
	return argc;
}

static char spare_stack[32 * 1024] __attribute__((aligned(16)));
struct spare_start {
	int fd;
	char **args, **env;
};

/* spare_exec runs in the spare's child before its exec: one descriptor
 * moved, and the exec. */
static int spare_exec(void *p) {
	struct spare_start *a = p;
	if (a->fd == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(a->fd, 3) < 0)
		_exit(127);
	execve(cli_spare_exe, a->args, a->env);
	_exit(127);
}

static void cli_spare_start(const char *root);

void berth_cli_spare(void) {
	if (getenv("_BERTH_INITPIPE") != NULL || getenv("_BERTH_NO_SPARE") != NULL)
		return;
	char buf[8192], *argv[128];
	int argc = cmdline(buf, sizeof buf, argv, 128), i;
	if (argc < 2)
		return;
	const char *base = strrchr(argv[0], '/');
	base = base != NULL ? base + 1 : argv[0];
	if (strcmp(base, "berth-runtime") == 0)
		i = 1;
	else if (strcmp(argv[1], "runtime") == 0)
		i = 2;
	else
		return;
	const char *root = "/run/berth/runtime", *cmd = NULL;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0)
			break;
		if (strncmp(a, "--root=", 7) == 0)
			root = a + 7;
		else if (strcmp(a, "--root") == 0 && i + 1 < argc)
			root = argv[++i];
		else if (cmd == NULL && (strcmp(a, "--log") == 0 || strcmp(a, "--log-format") == 0 ||
					 strcmp(a, "--criu") == 0 || strcmp(a, "--rootless") == 0))
			i++;
		else if (cmd == NULL && a[0] != '-')
			cmd = a;
	}
	if (cmd == NULL || (strcmp(cmd, "run") != 0 && strcmp(cmd, "create") != 0))
		return;
	cli_spare_start(root);
	sysmon_slack = 1;
}

static void cli_spare_start(const char *root) {
	struct statfs sfs;
	if (statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC)
		return;
	struct stat self, st;
	char cwd[2048] = "";
	if (stat("/proc/self/exe", &self) < 0 || (root[0] != '/' && getcwd(cwd, sizeof cwd) == NULL))
		return;
	int n = snprintf(cli_spare_exe, sizeof cli_spare_exe, "%s%s%s/.berth-%llx-%llx", cwd, cwd[0] ? "/" : "", root,
			 (unsigned long long)self.st_dev, (unsigned long long)self.st_ino);
	if (n <= 0 || (size_t)n >= sizeof cli_spare_exe || stat(cli_spare_exe, &st) < 0 ||
	    st.st_dev != self.st_dev || st.st_ino != self.st_ino || statfs(cli_spare_exe, &sfs) < 0 ||
	    !(sfs.f_flags & ST_RDONLY))
		return;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	/* The child shares our memory until its exec (posix_spawn's way, with
	 * a new pid namespace), on a stack of its own, reading only what is
	 * static: we go on at once into the Go runtime's start. A fork would
	 * write-protect every page we have, and that start then faulted on
	 * each page it wrote; a vfork would wait for the exec. */
	static char unshare_env[64];
	static char *args[] = {"berth", "init", NULL}, *env[6];
	static struct spare_start a;
	snprintf(unshare_env, sizeof unshare_env, "_BERTH_SPARE_UNSHARE=%d", CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS);
	env[0] = "GOMAXPROCS=1";
	env[1] = "GOGC=off";
	env[2] = "_BERTH_SPARE=3";
	env[3] = unshare_env;
	env[4] = getenv("BERTH_TRACE") != NULL ? "BERTH_TRACE=1" : NULL;
	a = (struct spare_start){sv[1], args, env};
	int pid = clone(spare_exec, spare_stack + sizeof spare_stack, CLONE_VM | CLONE_NEWPID | SIGCHLD, &a);
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return;
	}
	cli_spare_pid = (int)pid;
	cli_spare_fd = sv[0];
}

int berth_cli_spare_pid(void) { return cli_spare_pid; }
int berth_cli_spare_fd(void) { return cli_spare_fd; }
const char *berth_cli_spare_exe(void) { return cli_spare_exe; }

/* Joins the namespaces listed in _BERTH_NSENTER ("mnt=/proc/1/ns/mnt,user=...").
 * All paths are opened first, since joining the mount namespace changes what
 * later paths resolve to. */
void berth_nsenter(void) {
	berth_unshare();
	const char *env = getenv("_BERTH_NSENTER");
	if (env == NULL || *env == '\0')
		return;
	char *list = strdup(env);
	if (list == NULL)
		die("nsenter", "out of memory");
	int fds[8], types[8], n = 0;
	char *save = NULL;
	for (char *item = strtok_r(list, ",", &save); item != NULL && n < 8;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		if (eq == NULL)
			die("nsenter: malformed entry", item);
		*eq = '\0';
		const char *path = eq + 1;
		if (strcmp(item, "mnt") == 0)
			types[n] = CLONE_NEWNS;
		else if (strcmp(item, "user") == 0)
			types[n] = CLONE_NEWUSER;
		else if (strcmp(item, "time") == 0)
			types[n] = CLONE_NEWTIME;
		else
			die("nsenter: unknown namespace type", item);
		fds[n] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[n] < 0)
			die("nsenter: open", path);
		n++;
	}
	for (int i = 0; i < n; i++) {
		if (setns(fds[i], types[i]) < 0)
			die("nsenter: setns", "");
		close(fds[i]);
	}
	free(list);
	unsetenv("_BERTH_NSENTER");
}
