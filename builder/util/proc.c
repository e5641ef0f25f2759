/* proc.c: spawn, capture and reap external tools; track them for interrupt handling. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern char **environ;

#define MAX_CHILDREN 64
static volatile pid_t children[MAX_CHILDREN];
static pthread_mutex_t children_lock = PTHREAD_MUTEX_INITIALIZER;

static void track(pid_t pid, int add)
{
	pthread_mutex_lock(&children_lock);
	for (int i = 0; i < MAX_CHILDREN; i++) {
		if (add && children[i] == 0) {
			children[i] = pid;
			break;
		}
		if (!add && children[i] == pid) {
			children[i] = 0;
			break;
		}
	}
	pthread_mutex_unlock(&children_lock);
}

void ib_kill_children(void)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (children[i] > 0)
			kill(-children[i], SIGTERM);
	for (int t = 0; t < 50; t++) {
		int alive = 0;
		for (int i = 0; i < MAX_CHILDREN; i++)
			if (children[i] > 0 && kill(-children[i], 0) == 0)
				alive = 1;
		if (!alive)
			return;
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (children[i] > 0)
			kill(-children[i], SIGKILL);
}

int ib_have_program(const char *argv0)
{
	if (strchr(argv0, '/'))
		return access(argv0, X_OK) == 0;
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
	_cleanup_free_ char *copy = xstrdup(path);
	char *save = NULL;
	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		_cleanup_free_ char *p = xasprintf("%s/%s", d, argv0);
		if (access(p, X_OK) == 0)
			return 1;
	}
	return 0;
}

/* Keep only the last few lines of stderr for the error message. */
static void tail_lines(struct strbuf *sb, char *out, size_t outsz, int lines)
{
	const char *s = sb_str(sb);
	size_t n = sb->len;
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		n--;
	size_t start = n;
	int seen = 0;
	while (start > 0) {
		if (s[start - 1] == '\n' && ++seen == lines)
			break;
		start--;
	}
	snprintf(out, outsz, "%.*s", (int)(n - start), s + start);
	for (char *p = out; *p; p++)
		if (*p == '\n')
			*p = ';';
}

static void log_lines(struct ib_ctx *ctx, const char *tool, struct strbuf *pending, int flush)
{
	for (;;) {
		char *nl = memchr(pending->buf ? pending->buf : "", '\n', pending->len);
		if (!nl) {
			if (flush && pending->len > 0) {
				ib_log(ctx, IB_LOG_DEBUG, "%s: %s", tool, pending->buf);
				sb_reset(pending);
			}
			return;
		}
		*nl = '\0';
		ib_log(ctx, IB_LOG_DEBUG, "%s: %s", tool, pending->buf);
		size_t rest = pending->len - (size_t)(nl + 1 - pending->buf);
		memmove(pending->buf, nl + 1, rest);
		pending->len = rest;
		pending->buf[rest] = '\0';
	}
}

/* The child between fork and exec: only async-signal-safe calls (other threads may hold
 * locks). Exec failures go back to the parent as an errno on report. */
static _noreturn_ void child_exec(const char *const argv[], char *const envp[], int out, int err,
                                  int report, pid_t parent)
{
	/* A build killed outright (SIGKILL, the OOM killer) runs no cleanup: the kernel kills
	 * its tools instead, so no qemu-img or mkfs keeps writing into a dead build's files. */
	if (setpgid(0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(127);
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigaction(SIGINT, &dfl, NULL);
	sigaction(SIGTERM, &dfl, NULL);
	sigaction(SIGPIPE, &dfl, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	int null = open("/dev/null", O_RDONLY);
	if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) {
		int e = errno;
		(void)!write(report, &e, sizeof(e));
		_exit(127);
	}
	execvpe(argv[0], (char *const *)argv, envp);
	int e = errno;
	(void)!write(report, &e, sizeof(e));
	_exit(127);
}

/* fork + exec rather than posix_spawn, which cannot set a parent-death signal. 0, or the
 * errno why the program could not be started (the child is reaped then). */
static int spawn(pid_t *ret_pid, const char *const argv[], char *const envp[], int out, int err)
{
	int report[2];
	if (pipe2(report, O_CLOEXEC) < 0)
		return errno;
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0)
		child_exec(argv, envp, out, err, report[1], parent);
	int e = errno;
	close(report[1]);
	if (pid < 0) {
		close(report[0]);
		return e;
	}
	/* EOF: exec closed the pipe; an int: the child failed before running the program. */
	ssize_t n;
	while ((n = read(report[0], &e, sizeof(e))) < 0 && errno == EINTR)
		;
	close(report[0]);
	if (n == (ssize_t)sizeof(e)) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return e ? e : ECHILD;
	}
	*ret_pid = pid;
	return 0;
}

/* -vv: the command as a shell would take it. No secret is ever an argument here (tokens,
 * keys and passwords reach tools in files or the environment), and tests hold it so. */
static void log_command(struct ib_ctx *ctx, const char *const argv[])
{
	struct strbuf sb = STRBUF_INIT;
	sb_adds(&sb, "running:");
	for (size_t i = 0; argv[i]; i++) {
		const char *a = argv[i];
		if (*a && strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		                    "-_./=:,+@%") == strlen(a)) {
			sb_addf(&sb, " %s", a);
			continue;
		}
		sb_adds(&sb, " '");
		for (; *a; a++)
			sb_adds(&sb, *a == '\'' ? "'\\''" : (char[]){*a, '\0'});
		sb_adds(&sb, "'");
	}
	ib_log(ctx, IB_LOG_DEBUG, "%s", sb_str(&sb));
	sb_release(&sb);
}

int ib_run(struct ib_ctx *ctx, const char *const argv[], const char *const env[], unsigned flags,
           char **ret_out)
{
	int outp[2] = {-1, -1}, errp[2] = {-1, -1};
	const char *tool = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];

	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot create pipe for %s", tool);

	/* The caller's entries replace inherited ones of the same name (a host TZ or
	 * E2FSPROGS_FAKE_TIME must not win over what the stage asked for). */
	struct strv envv = {0};
	for (char **e = environ; *e; e++) {
		size_t klen = strcspn(*e, "=");
		int overridden = 0;
		for (size_t i = 0; env && env[i] && !overridden; i++)
			overridden = strncmp(env[i], *e, klen) == 0 && env[i][klen] == '=';
		if (!overridden)
			strv_push(&envv, *e);
	}
	for (size_t i = 0; env && env[i]; i++)
		strv_push(&envv, env[i]);

	log_command(ctx, argv);
	pid_t pid = -1;
	pthread_mutex_lock(&children_lock);
	int r = spawn(&pid, argv, envv.v, outp[1], errp[1]);
	pthread_mutex_unlock(&children_lock);
	strv_release(&envv);
	close(outp[1]);
	close(errp[1]);
	if (r != 0) {
		close(outp[0]);
		close(errp[0]);
		return ib_error_errno(ctx, IB_E_TOOL, r, "cannot run '%s'", argv[0]);
	}
	track(pid, 1);

	struct strbuf out = STRBUF_INIT, err = STRBUF_INIT, pend_out = STRBUF_INIT,
	              pend_err = STRBUF_INIT;
	out.max = 64u << 20;
	struct pollfd pfd[2] = {{outp[0], POLLIN, 0}, {errp[0], POLLIN, 0}};
	int open_fds = 2;
	char buf[65536];
	while (open_fds > 0) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(pfd[i].fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
				open_fds--;
				continue;
			}
			if (i == 0) {
				if (flags & IB_RUN_CAPTURE_STDOUT) {
					if (out.len + (size_t)n > out.max)
						continue; /* drop the excess; the caller checks the
						             size it needs */
					sb_add(&out, buf, (size_t)n);
				}
				if (flags & IB_RUN_STDOUT_TO_LOG) {
					sb_add(&pend_out, buf, (size_t)n);
					log_lines(ctx, tool, &pend_out, 0);
				}
			} else {
				/* Keep the last 64 KiB of stderr for the message. */
				if (err.len > 65536) {
					memmove(err.buf, err.buf + err.len - 32768, 32768);
					err.len = 32768;
					err.buf[err.len] = '\0';
				}
				sb_add(&err, buf, (size_t)n);
				sb_add(&pend_err, buf, (size_t)n);
				log_lines(ctx, tool, &pend_err, 0);
			}
		}
	}
	log_lines(ctx, tool, &pend_out, 1);
	log_lines(ctx, tool, &pend_err, 1);
	sb_release(&pend_out);
	sb_release(&pend_err);

	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	track(pid, 0);

	int rc = 0;
	if (ib_interrupted) {
		rc = ib_error(ctx, IB_E_INTERRUPTED, "interrupted while running %s", tool);
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char last[1024];
		tail_lines(&err, last, sizeof(last), 3);
		if (WIFSIGNALED(status))
			rc = ib_error(ctx, IB_E_TOOL, "%s killed by signal %d%s%s", tool,
			              WTERMSIG(status), *last ? ": " : "", last);
		else
			rc = ib_error(ctx, IB_E_TOOL, "%s failed with exit status %d%s%s", tool,
			              WEXITSTATUS(status), *last ? ": " : "", last);
	}
	sb_release(&err);
	if (rc == 0 && ret_out)
		*ret_out = sb_take(&out);
	sb_release(&out);
	return rc;
}
