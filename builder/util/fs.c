/* fs.c: file helpers: atomic writes, recursive removal, locks, cache location. */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>

int ib_mkdir_p(struct ib_ctx *ctx, const char *path, mode_t mode)
{
	_cleanup_free_ char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return ib_error_errno(ctx, IB_E_IO, errno, "cannot create directory '%s'",
			                      p);
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot create directory '%s'", p);
	return 0;
}

int ib_write_file_atomic(struct ib_ctx *ctx, const char *path, const void *data, size_t len,
                         mode_t mode)
{
	_cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
	/* A fresh file, never a stale temporary one (a crashed run's, same pid): its mode would
	 * be kept until the fchmod below, after the data (maybe a secret) is written. */
	unlink(tmp);
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot create '%s'", tmp);
	const char *p = data;
	size_t left = len;
	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			unlink(tmp);
			return ib_error_errno(ctx, IB_E_IO, e, "cannot write '%s'", tmp);
		}
		p += n;
		left -= (size_t)n;
	}
	if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
		int e = errno;
		unlink(tmp);
		return ib_error_errno(ctx, IB_E_IO, e, "cannot write '%s'", tmp);
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return ib_error_errno(ctx, IB_E_IO, e, "cannot rename '%s' to '%s'", tmp, path);
	}
	return 0;
}

int ib_read_file(struct ib_ctx *ctx, const char *path, size_t max, char **ret_data, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot open '%s'", path);
	size_t alloc = 4096, len = 0;
	_cleanup_free_ char *buf = xmalloc(alloc);
	for (;;) {
		if (len + 1 >= alloc) {
			if (alloc > max + 1)
				return ib_error(ctx, IB_E_SPEC, "'%s' is larger than %zu bytes",
				                path, max);
			alloc *= 2;
			buf = xrealloc(buf, alloc);
		}
		ssize_t n = read(fd, buf + len, alloc - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ib_error_errno(ctx, IB_E_IO, errno, "cannot read '%s'", path);
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max)
		return ib_error(ctx, IB_E_SPEC, "'%s' is larger than %zu bytes", path, max);
	buf[len] = '\0';
	if (ret_len)
		*ret_len = len;
	*ret_data = TAKE_PTR(buf);
	return 0;
}

static int rm_rf_at(struct ib_ctx *ctx, int parent, const char *name, dev_t dev, const char *top)
{
	struct stat st;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot remove '%s'", top);
	}
	if (S_ISDIR(st.st_mode)) {
		if (st.st_dev != dev)
			return ib_error(
			        ctx, IB_E_IO,
			        "refusing to remove '%s': another filesystem is mounted inside",
			        top);
		int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return ib_error_errno(ctx, IB_E_IO, errno, "cannot remove '%s'", top);
		DIR *d = fdopendir(fd);
		if (!d) {
			close(fd);
			return ib_error_errno(ctx, IB_E_IO, errno, "cannot remove '%s'", top);
		}
		struct dirent *de;
		int r = 0;
		while ((de = readdir(d))) {
			if (streq(de->d_name, ".") || streq(de->d_name, ".."))
				continue;
			r = rm_rf_at(ctx, dirfd(d), de->d_name, dev, top);
			if (r < 0)
				break;
		}
		closedir(d);
		if (r < 0)
			return r;
		if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			return ib_error_errno(ctx, IB_E_IO, errno, "cannot remove '%s'", top);
		return 0;
	}
	if (unlinkat(parent, name, 0) < 0 && errno != ENOENT)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot remove '%s'", top);
	return 0;
}

int ib_rm_rf(struct ib_ctx *ctx, const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT
		               ? 0
		               : ib_error_errno(ctx, IB_E_IO, errno, "cannot remove '%s'", path);
	return rm_rf_at(ctx, AT_FDCWD, path, st.st_dev, path);
}

static int lock_file(struct ib_ctx *ctx, const char *path, int nonblock, int *busy)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot open lock '%s'", path);
	while (flock(fd, LOCK_EX | (nonblock ? LOCK_NB : 0)) < 0) {
		if (errno == EINTR && !ib_interrupted)
			continue;
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK && busy) {
			*busy = 1;
			return -IB_E_IO;
		}
		return ib_error_errno(ctx, IB_E_IO, e, "cannot lock '%s'", path);
	}
	return fd;
}

int ib_lock_file(struct ib_ctx *ctx, const char *path)
{
	return lock_file(ctx, path, 0, NULL);
}

int ib_trylock_file(struct ib_ctx *ctx, const char *path, int *busy)
{
	*busy = 0;
	return lock_file(ctx, path, 1, busy);
}

/* The pid in name when it is exactly <prefix><digits><suffix>, else 0. */
static pid_t pid_in_name(const char *name, const char *prefix, const char *suffix)
{
	size_t lp = strlen(prefix), ls = strlen(suffix), ln = strlen(name);
	if (ln <= lp + ls || strncmp(name, prefix, lp) != 0 || !streq(name + ln - ls, suffix))
		return 0;
	long long pid = 0;
	for (size_t i = lp; i < ln - ls; i++) {
		if (name[i] < '0' || name[i] > '9' || pid > 1 << 30)
			return 0;
		pid = pid * 10 + (name[i] - '0');
	}
	return (pid_t)pid;
}

int ib_remove_dead_pid_entries(const char *dir, const char *prefix, const char *suffix,
                               int (*rm)(struct ib_ctx *ctx, const char *path))
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct strv stale = {0};
	struct dirent *de;
	while ((de = readdir(d))) {
		pid_t pid = pid_in_name(de->d_name, prefix, suffix);
		/* EPERM: alive, someone else's. A reused pid only delays the removal. */
		if (pid > 0 && pid != getpid() && kill(pid, 0) < 0 && errno == ESRCH)
			strv_push_take(&stale, ib_path_join(dir, de->d_name));
	}
	closedir(d);
	int n = 0;
	for (size_t i = 0; i < stale.n; i++) {
		struct ib_ctx quiet;
		ib_ctx_init(&quiet);
		if (rm(&quiet, stale.v[i]) == 0)
			n++;
	}
	strv_release(&stale);
	return n;
}

int ib_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

int ib_fsync_path(struct ib_ctx *ctx, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot open '%s'", path);
	if (fsync(fd) < 0) {
		int e = errno;
		close(fd);
		return ib_error_errno(ctx, IB_E_IO, e, "cannot fsync '%s'", path);
	}
	close(fd);
	return 0;
}

long long ib_file_size(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	return (long long)st.st_size;
}

long long ib_file_allocated(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	return (long long)st.st_blocks * 512;
}

char *ib_path_join(const char *a, const char *b)
{
	size_t la = strlen(a);
	while (la > 1 && a[la - 1] == '/')
		la--;
	while (*b == '/')
		b++;
	return xasprintf("%.*s/%s", (int)la, a, b);
}

char *ib_cache_dir(void)
{
	const char *e = getenv("IMGBUILD_CACHE_DIR");
	if (e && *e)
		return ib_abspath(e);
	e = getenv("XDG_CACHE_HOME");
	if (e && *e == '/')
		return ib_path_join(e, "imgbuild");
	e = getenv("HOME");
	if (!e || !*e)
		e = "/root";
	return xasprintf("%s/.cache/imgbuild", e);
}

char *ib_abspath(const char *path)
{
	if (path[0] == '/')
		return xstrdup(path);
	char cwd[4096];
	if (!getcwd(cwd, sizeof(cwd)))
		return xstrdup(path);
	return ib_path_join(cwd, path);
}
