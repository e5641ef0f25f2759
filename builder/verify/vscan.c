/* vscan.c: scan the image's writable places for secrets, streamed out as tar.
 *
 * What is scanned: every regular file under /etc, /root, /home, /var, /opt, /usr/local,
 * /srv and /tmp: where configuration, state and people's files live, and where a build
 * step would leave a key or a token. Not scanned: /usr outside /usr/local and /boot
 * (package contents: their documentation and test data quote example keys), and under
 * /var the container image archives (var/lib/imgbuild/images, pinned by digest),
 * downloaded packages (var/cache/apt/archives) and the sparse var/log/lastlog.
 * Each directory leaves the appliance as one tar stream (guestfs_tar_out into a pipe)
 * read here by a thread with libarchive: one call per directory, no file-by-file round
 * trips, and memory bounded by the chunk size whatever the files' sizes.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>

#include "verify_int.h"

#define CHUNK      (64u << 10)
#define MAX_LISTED 10 /* findings named in the detail; the rest are counted */

static const char *const scanned[] = {"/etc", "/root",      "/home", "/var",
                                      "/opt", "/usr/local", "/srv",  "/tmp"};
/* tar --exclude patterns for /var (member names start with "./"); arrays, not literals,
 * since libguestfs takes them as char *const *. */
static char ex_images[] = "./lib/imgbuild/images", ex_debs[] = "./cache/apt/archives",
            ex_lastlog[] = "./log/lastlog";
static char *const var_excludes[] = {ex_images, ex_debs, ex_lastlog, NULL};

struct scan_job {
	int fd;             /* the read end of the pipe; the job closes it */
	const char *dir;    /* names in the stream are relative to it */
	struct strv *found; /* "what in path" */
	uint64_t files, bytes;
	char err[256];
};

static void record(struct scan_job *j, const char *name, enum ib_secret kind)
{
	if (startswith(name, "./"))
		name += 2;
	strv_push_take(j->found, xasprintf("%s in %s/%s", ib_secret_name(kind),
	                                   streq(j->dir, "/") ? "" : j->dir, name));
}

/* One entry's content through the scanner. Returns 0, or -1 on a stream error. */
static int scan_entry(struct scan_job *j, struct archive *a, struct archive_entry *e, char *buf)
{
	struct ib_secret_scanner s;
	ib_secret_scanner_init(&s);
	la_ssize_t n;
	while ((n = archive_read_data(a, buf, CHUNK)) > 0) {
		j->bytes += (uint64_t)n;
		if (ib_secret_feed(&s, buf, (size_t)n))
			break; /* one finding per file is enough; the rest is skipped */
	}
	int r = 0;
	if (n < 0) {
		snprintf(j->err, sizeof(j->err), "%s", archive_error_string(a));
		r = -1;
	} else if (ib_secret_finish(&s)) {
		record(j, archive_entry_pathname(e), s.found);
	}
	ib_secret_scanner_release(&s);
	j->files++;
	return r;
}

static void *scan_thread(void *arg)
{
	struct scan_job *j = arg;
	char *buf = xmalloc(CHUNK);
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	if (archive_read_open_fd(a, j->fd, CHUNK) != ARCHIVE_OK) {
		snprintf(j->err, sizeof(j->err), "%s", archive_error_string(a));
	} else {
		struct archive_entry *e;
		int r;
		while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
			/* A hard link's data came with its first name. */
			if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
				continue;
			if (scan_entry(j, a, e, buf) < 0)
				break;
		}
		if (!j->err[0] && r != ARCHIVE_EOF)
			snprintf(j->err, sizeof(j->err), "%s", archive_error_string(a));
	}
	archive_read_free(a);
	/* libguestfs keeps writing until its tar ends: drain, or it would block forever. */
	for (;;) {
		ssize_t k = read(j->fd, buf, CHUNK);
		if (k <= 0 && !(k < 0 && errno == EINTR))
			break;
	}
	close(j->fd);
	free(buf);
	return NULL;
}

/* Stream one directory of the image through a scan thread. */
static int scan_dir(struct vctx *v, const char *dir, char *const *excludes, struct strv *found,
                    uint64_t *files, uint64_t *bytes, char *why, size_t n)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(why, n, "cannot create a pipe: %s", strerror(errno));
		return -1;
	}
	struct scan_job j = {.fd = p[0], .dir = dir, .found = found};
	pthread_t t;
	int e = pthread_create(&t, NULL, scan_thread, &j);
	if (e) {
		close(p[0]);
		close(p[1]);
		snprintf(why, n, "cannot start a thread: %s", strerror(e));
		return -1;
	}
	char path[64];
	snprintf(path, sizeof(path), "/dev/fd/%d", p[1]);
	int r = excludes ? guestfs_tar_out_opts(v->g, dir, path, GUESTFS_TAR_OUT_OPTS_EXCLUDES,
	                                        excludes, -1)
	                 : guestfs_tar_out_opts(v->g, dir, path, -1);
	if (r < 0)
		snprintf(why, n, "cannot read %s out of the image: %s", dir, v_err(v));
	close(p[1]); /* the scan thread sees the end of the stream */
	pthread_join(t, NULL);
	*files += j.files;
	*bytes += j.bytes;
	if (r == 0 && j.err[0]) {
		snprintf(why, n, "cannot read the tar stream of %s: %s", dir, j.err);
		r = -1;
	}
	return r;
}

void v_check_secrets(struct vctx *v)
{
	if (!v->mounted) {
		v_result(v, "secrets", 0, "not checked: the root filesystem did not mount");
		return;
	}
	struct strv found = {0};
	struct strbuf bad = STRBUF_INIT, dirs = STRBUF_INIT;
	uint64_t files = 0, bytes = 0;
	double t0 = ib_now();
	for (size_t i = 0; i < ARRAY_SIZE(scanned); i++) {
		/* A directory that is a link would be read from outside the image's tree. */
		if (guestfs_is_dir(v->g, scanned[i]) <= 0 ||
		    guestfs_is_symlink(v->g, scanned[i]) > 0)
			continue;
		char why[512];
		if (scan_dir(v, scanned[i], streq(scanned[i], "/var") ? var_excludes : NULL, &found,
		             &files, &bytes, why, sizeof(why)) < 0)
			sb_addf(&bad, "%s%s", bad.len ? "; " : "", why);
		sb_addf(&dirs, "%s%s", dirs.len ? " " : "", scanned[i]);
	}
	ib_log(v->ctx, IB_LOG_DEBUG, "verify: scanned %llu files, %llu bytes in %.1fs",
	       (unsigned long long)files, (unsigned long long)bytes, ib_now() - t0);
	for (size_t i = 0; i < found.n && i < MAX_LISTED; i++)
		sb_addf(&bad, "%s%s", bad.len ? "; " : "", found.v[i]);
	if (found.n > MAX_LISTED)
		sb_addf(&bad, "; and %zu more", found.n - MAX_LISTED);
	if (bad.len)
		v_result(v, "secrets", 0, "%s", sb_str(&bad));
	else
		v_result(v, "secrets", 1,
		         "no private key, AWS credential, kubeadm token or key or registry "
		         "password in %llu files (%llu MiB) under %s",
		         (unsigned long long)files, (unsigned long long)(bytes >> 20),
		         sb_str(&dirs));
	strv_release(&found);
	sb_release(&bad);
	sb_release(&dirs);
}
