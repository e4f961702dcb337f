#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
