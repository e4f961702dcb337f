#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

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
