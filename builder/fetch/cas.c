/* cas.c: the content-addressed cache: entries by SHA-256, atomic commits, refs, entry locks. */
#include "cas.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "util/fs.h"
#include "util/hash.h"

#define REF_NAME_MAX 1024

int ib_cas_hex_valid(const char *s)
{
	if (!s)
		return 0;
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

static int kind_valid(const char *kind)
{
	if (!kind || !*kind || strlen(kind) > 64)
		return 0;
	for (const char *p = kind; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '_'))
			return 0;
	return 1;
}

int ib_cas_open(struct ib_ctx *ctx, const char *cache_dir, struct ib_cas *ret)
{
	_cleanup_free_ char *root = ib_abspath(cache_dir);
	static const char *const subdirs[] = {"blobs/sha256", "tmp", "refs"};
	for (size_t i = 0; i < ARRAY_SIZE(subdirs); i++) {
		_cleanup_free_ char *d = ib_path_join(root, subdirs[i]);
		int r = ib_mkdir_p(ctx, d, 0755);
		if (r < 0)
			return r;
	}
	*ret = (struct ib_cas){.root = TAKE_PTR(root)};
	return 0;
}

void ib_cas_release(struct ib_cas *cas)
{
	free(cas->root);
	cas->root = NULL;
}

char *ib_cas_path(const struct ib_cas *cas, const char *hex)
{
	return xasprintf("%s/blobs/sha256/%s", cas->root, hex);
}

char *ib_cas_tmp_path(const struct ib_cas *cas, const char *tag)
{
	/* pid + a process-wide counter: unique across processes and threads. */
	static atomic_uint counter;
	unsigned n = atomic_fetch_add(&counter, 1);
	return xasprintf("%s/tmp/%s.tmp.%d.%u", cas->root, tag, (int)getpid(), n);
}

static void record(const struct ib_cas *cas, char *rel)
{
	if (!cas->rec) {
		free(rel);
		return;
	}
	pthread_mutex_lock(&cas->rec->lock);
	strv_push_take(&cas->rec->paths, rel);
	pthread_mutex_unlock(&cas->rec->lock);
}

int ib_cas_lookup(struct ib_ctx *ctx, const struct ib_cas *cas, const char *hex, int verify,
                  char **ret_path)
{
	if (!ib_cas_hex_valid(hex))
		return ib_error(ctx, IB_E_SPEC, "bad sha256 digest '%s'", hex ? hex : "(null)");
	record(cas, xasprintf("blobs/sha256/%s", hex));
	_cleanup_free_ char *path = ib_cas_path(cas, hex);
	struct stat st;
	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot stat '%s'", path);
	}
	if (!S_ISREG(st.st_mode))
		return ib_error(ctx, IB_E_IO, "cache entry '%s' is not a regular file", path);
	if (verify) {
		char actual[IB_SHA256_HEX];
		int r = ib_sha256_file_hex(ctx, path, actual);
		if (r < 0)
			return r;
		if (!streq(actual, hex)) {
			ib_log(ctx, IB_LOG_WARN,
			       "cache entry sha256:%.12s is corrupted (its bytes hash to "
			       "sha256:%.12s): removed",
			       hex, actual);
			if (unlink(path) < 0 && errno != ENOENT)
				return ib_error_errno(ctx, IB_E_IO, errno, "cannot remove '%s'",
				                      path);
			return 0;
		}
	}
	if (ret_path)
		*ret_path = TAKE_PTR(path);
	return 1;
}

int ib_cas_commit_hashed(struct ib_ctx *ctx, const struct ib_cas *cas, const char *tmp_path,
                         const char *hex, const char *actual, const char *what)
{
	if (!ib_cas_hex_valid(hex)) {
		unlink(tmp_path);
		return ib_error(ctx, IB_E_SPEC, "%s: bad sha256 digest '%s'", what, hex);
	}
	if (!streq(hex, actual)) {
		/* Those bytes never enter the cache, and are not kept for a resume either. */
		unlink(tmp_path);
		return ib_error(ctx, IB_E_VERIFY, "%s: sha256 mismatch: expected %s, got %s", what,
		                hex, actual);
	}
	/* Read-only: a stray write through a path handed to a tool cannot alter an entry. */
	if (chmod(tmp_path, 0444) < 0) {
		int e = errno;
		unlink(tmp_path);
		return ib_error_errno(ctx, IB_E_IO, e, "cannot chmod '%s'", tmp_path);
	}
	_cleanup_free_ char *path = ib_cas_path(cas, hex);
	/* Another process committing the same entry meanwhile is fine: same bytes. */
	if (rename(tmp_path, path) < 0) {
		int e = errno;
		unlink(tmp_path);
		return ib_error_errno(ctx, IB_E_IO, e, "cannot rename '%s' to '%s'", tmp_path,
		                      path);
	}
	return 0;
}

int ib_cas_commit(struct ib_ctx *ctx, const struct ib_cas *cas, const char *tmp_path,
                  const char *hex, const char *what)
{
	char actual[IB_SHA256_HEX];
	int r = ib_sha256_file_hex(ctx, tmp_path, actual);
	if (r < 0) {
		unlink(tmp_path);
		return r;
	}
	return ib_cas_commit_hashed(ctx, cas, tmp_path, hex, actual, what);
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ib_cas_put(struct ib_ctx *ctx, const struct ib_cas *cas, const void *data, size_t len,
               char ret_hex[65])
{
	char hex[IB_SHA256_HEX];
	ib_sha256_hex(data, len, hex);
	_cleanup_free_ char *path = ib_cas_path(cas, hex);
	if (!ib_exists(path)) {
		_cleanup_free_ char *tmp = ib_cas_tmp_path(cas, hex);
		_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			return ib_error_errno(ctx, IB_E_IO, errno, "cannot create '%s'", tmp);
		int w = write_all(fd, data, len);
		if (w < 0) {
			unlink(tmp);
			return ib_error_errno(ctx, IB_E_IO, -w, "cannot write '%s'", tmp);
		}
		int r = ib_cas_commit_hashed(ctx, cas, tmp, hex, hex, "cache entry");
		if (r < 0)
			return r;
	}
	memcpy(ret_hex, hex, IB_SHA256_HEX);
	return 0;
}

int ib_cas_trylock(struct ib_ctx *ctx, const struct ib_cas *cas, const char *hex, int *ret_fd)
{
	if (!ib_cas_hex_valid(hex))
		return ib_error(ctx, IB_E_SPEC, "bad sha256 digest '%s'", hex);
	_cleanup_free_ char *path = xasprintf("%s/tmp/%s.lock", cas->root, hex);
	for (int tries = 0; tries < 100; tries++) {
		_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			return ib_error_errno(ctx, IB_E_IO, errno, "cannot open lock '%s'", path);
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			if (errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return ib_error_errno(ctx, IB_E_IO, errno, "cannot lock '%s'", path);
		}
		/* `cache prune` unlinks stale lock files while holding them: a lock on an
		 * unlinked inode protects nothing, so take the current file instead. */
		struct stat a, b;
		if (fstat(fd, &a) < 0)
			return ib_error_errno(ctx, IB_E_IO, errno, "cannot stat '%s'", path);
		if (stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			*ret_fd = TAKE_FD(fd);
			return 1;
		}
	}
	return ib_error(ctx, IB_E_IO, "cannot lock '%s': it keeps being replaced", path);
}

/* ---- refs ---- */

char *ib_cas_ref_relpath(const char *kind, const char *name)
{
	char h[IB_SHA256_HEX];
	ib_sha256_hex(name, strlen(name), h);
	return xasprintf("refs/%s/%s", kind, h);
}

static char *ref_path(const struct ib_cas *cas, const char *kind, const char *name)
{
	char h[IB_SHA256_HEX];
	ib_sha256_hex(name, strlen(name), h);
	return xasprintf("%s/refs/%s/%s", cas->root, kind, h);
}

static int ref_check(struct ib_ctx *ctx, const char *kind, const char *name)
{
	if (!kind_valid(kind))
		return ib_error(ctx, IB_E_SPEC, "bad cache ref kind '%s'", kind ? kind : "(null)");
	if (!name || !*name || strlen(name) > REF_NAME_MAX || strpbrk(name, "\n\r"))
		return ib_error(ctx, IB_E_SPEC, "bad cache ref name for '%s'", kind);
	return 0;
}

int ib_cas_ref_set(struct ib_ctx *ctx, const struct ib_cas *cas, const char *kind, const char *name,
                   const char *hex)
{
	int r = ref_check(ctx, kind, name);
	if (r < 0)
		return r;
	if (!ib_cas_hex_valid(hex))
		return ib_error(ctx, IB_E_SPEC, "bad sha256 digest '%s' for %s ref '%s'", hex, kind,
		                name);
	_cleanup_free_ char *dir = xasprintf("%s/refs/%s", cas->root, kind);
	r = ib_mkdir_p(ctx, dir, 0755);
	if (r < 0)
		return r;
	_cleanup_free_ char *path = ref_path(cas, kind, name);
	_cleanup_free_ char *text = xasprintf("%s\t%s\n", hex, name);
	/* ib_write_file_atomic's temp name carries only the pid: two threads setting the same
	 * ref would share it, so write under a name unique to this call and rename. */
	_cleanup_free_ char *tmp = ib_cas_tmp_path(cas, "ref");
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot create '%s'", tmp);
	int w = write_all(fd, text, strlen(text));
	if (w < 0) {
		unlink(tmp);
		return ib_error_errno(ctx, IB_E_IO, -w, "cannot write '%s'", tmp);
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return ib_error_errno(ctx, IB_E_IO, e, "cannot rename '%s' to '%s'", tmp, path);
	}
	return 0;
}

/* Parse "<hex>\t<name>\n": 0 with hex and *ret_name (points into text), -1 if malformed. */
static int ref_parse(char *text, char hex[65], const char **ret_name)
{
	if (strlen(text) < 66 || text[64] != '\t')
		return -1;
	memcpy(hex, text, 64);
	hex[64] = '\0';
	if (!ib_cas_hex_valid(hex))
		return -1;
	char *name = text + 65;
	char *nl = strchr(name, '\n');
	if (!nl || nl[1] != '\0')
		return -1;
	*nl = '\0';
	*ret_name = name;
	return 0;
}

int ib_cas_ref_get(struct ib_ctx *ctx, const struct ib_cas *cas, const char *kind, const char *name,
                   char hex[65])
{
	int r = ref_check(ctx, kind, name);
	if (r < 0)
		return r;
	record(cas, ib_cas_ref_relpath(kind, name));
	_cleanup_free_ char *path = ref_path(cas, kind, name);
	if (!ib_exists(path))
		return 0;
	_cleanup_free_ char *text = NULL;
	r = ib_read_file(ctx, path, REF_NAME_MAX + 128, &text, NULL);
	if (r < 0)
		return r;
	char h[IB_SHA256_HEX];
	const char *stored = NULL;
	/* A malformed ref, or (absurdly) another name with the same hash, is no ref. */
	if (ref_parse(text, h, &stored) < 0 || !streq(stored, name)) {
		ib_log(ctx, IB_LOG_WARN, "ignoring malformed cache ref '%s'", path);
		return 0;
	}
	memcpy(hex, h, IB_SHA256_HEX);
	return 1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in dir (no dot files); missing dir: empty. */
static int list_dir(struct ib_ctx *ctx, const char *dir, struct strv *ret)
{
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot read directory '%s'", dir);
	}
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			strv_push(ret, de->d_name);
	closedir(d);
	if (ret->n > 1)
		qsort(ret->v, ret->n, sizeof(ret->v[0]), cmp_str);
	return 0;
}

int ib_cas_ref_foreach(struct ib_ctx *ctx, const struct ib_cas *cas,
                       int (*fn)(const char *kind, const char *name, const char *hex, void *data),
                       void *data)
{
	_cleanup_free_ char *refs = ib_path_join(cas->root, "refs");
	struct strv kinds = {0};
	int r = list_dir(ctx, refs, &kinds);
	for (size_t k = 0; r == 0 && k < kinds.n; k++) {
		if (!kind_valid(kinds.v[k]))
			continue;
		_cleanup_free_ char *dir = ib_path_join(refs, kinds.v[k]);
		struct strv files = {0};
		r = list_dir(ctx, dir, &files);
		for (size_t i = 0; r == 0 && i < files.n; i++) {
			if (!ib_cas_hex_valid(files.v[i]))
				continue; /* temp names and strays */
			_cleanup_free_ char *path = ib_path_join(dir, files.v[i]);
			_cleanup_free_ char *text = NULL;
			struct ib_ctx quiet;
			ib_ctx_init(&quiet);
			if (ib_read_file(&quiet, path, REF_NAME_MAX + 128, &text, NULL) < 0)
				continue;
			char hex[IB_SHA256_HEX];
			const char *name = NULL;
			if (ref_parse(text, hex, &name) < 0)
				continue;
			r = fn(kinds.v[k], name, hex, data);
		}
		strv_release(&files);
	}
	strv_release(&kinds);
	return r;
}
