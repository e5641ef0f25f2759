/* appliance.c: the libguestfs boundary: launch with KVM or TCG, errors, reading files. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "util/fs.h"
#include "verify_int.h"

#define DEFAULT_MEMSIZE 768
#define MAX_LAUNCH_ERR  1024
#define READ_FILE_LIMIT (2u << 20) /* guestfs_read_file travels in one protocol message */

/* Set once a KVM launch failed in this process: later images go straight to TCG. */
static int kvm_failed;

/* Messages of the calls that fail are kept (bounded) while launching: that failure is
 * reported as one error. Afterwards a failed call is a check's result. */
static void on_error(guestfs_h *g, void *opaque, const char *msg)
{
	struct vctx *v = opaque;
	struct strbuf *sb = &v->launch_err;
	/* The first line says what failed; the rest is libguestfs's advice on debugging.
	 * "guestfs_launch failed" only repeats that an earlier message said why. */
	size_t n = strcspn(msg, "\n");
	while (n && (msg[n - 1] == '.' || msg[n - 1] == ' '))
		n--;
	if (sb->len >= MAX_LAUNCH_ERR || n == 0 || startswith(msg, "guestfs_launch failed"))
		return;
	if (sb->len)
		sb_adds(sb, "; ");
	sb_add(sb, msg, n < MAX_LAUNCH_ERR ? n : MAX_LAUNCH_ERR);
}

/* libguestfs prints warnings on stderr unless someone listens: route them to the log. */
static void on_warning(guestfs_h *g, void *opaque, uint64_t event, int handle, int flags,
                       const char *buf, size_t len, const uint64_t *array, size_t array_len)
{
	struct vctx *v = opaque;
	ib_log(v->ctx, IB_LOG_DEBUG, "libguestfs: %.*s", (int)len, buf);
}

static int kvm_usable(void)
{
	return access("/dev/kvm", R_OK | W_OK) == 0;
}

/* raw or qcow2 from the header, so that libguestfs never guesses. */
static int detect_format(struct vctx *v, const char *image, const char **ret)
{
	_cleanup_close_ int fd = open(image, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ib_error_errno(v->ctx, IB_E_IO, errno, "cannot open image '%s'", image);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return ib_error(v->ctx, IB_E_IO, "cannot open image '%s': not a regular file",
		                image);
	unsigned char magic[4] = {0};
	ssize_t n = read(fd, magic, sizeof(magic));
	if (n < 0)
		return ib_error_errno(v->ctx, IB_E_IO, errno, "cannot read image '%s'", image);
	*ret = n == 4 && memcmp(magic, "QFI\xfb", 4) == 0 ? "qcow2" : "raw";
	return 0;
}

/* One launch attempt on a fresh handle; v->g stays set only on success. */
static int launch(struct vctx *v, const char *format, const char *format2, int memsize, int tcg)
{
	sb_reset(&v->launch_err);
	guestfs_h *g = guestfs_create();
	if (!g)
		return ib_error_errno(v->ctx, IB_E_LIB, errno, "cannot create a libguestfs handle");
	guestfs_set_error_handler(g, on_error, v);
	guestfs_set_event_callback(g, on_warning, GUESTFS_EVENT_WARNING, 0, v);
	int r = guestfs_set_memsize(g, memsize);
	if (r == 0 && tcg)
		r = guestfs_set_backend_setting(g, "force_tcg", "1");
	if (r == 0)
		r = guestfs_add_drive_opts(g, v->image, GUESTFS_ADD_DRIVE_OPTS_READONLY, 1,
		                           GUESTFS_ADD_DRIVE_OPTS_FORMAT, format, -1);
	if (r == 0 && v->image2)
		r = guestfs_add_drive_opts(g, v->image2, GUESTFS_ADD_DRIVE_OPTS_READONLY, 1,
		                           GUESTFS_ADD_DRIVE_OPTS_FORMAT, format2, -1);
	if (r == 0)
		r = guestfs_launch(g);
	if (r < 0) {
		guestfs_close(g);
		return -1;
	}
	v->g = g;
	return 0;
}

/* Is TCG forced already (LIBGUESTFS_BACKEND_SETTINGS=force_tcg)? */
static int env_forces_tcg(void)
{
	const char *s = getenv("LIBGUESTFS_BACKEND_SETTINGS");
	if (!s)
		return 0;
	_cleanup_free_ char *copy = xstrdup(s);
	char *save = NULL;
	for (char *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save))
		if (streq(t, "force_tcg") || streq(t, "force_tcg=1") || streq(t, "force_tcg=true"))
			return 1;
	return 0;
}

int v_open(struct vctx *v, const char *format, int memsize_mb, unsigned flags)
{
	int r;
	const char *format2 = NULL;
	if (!format && (r = detect_format(v, v->image, &format)) < 0)
		return r;
	if (v->image2 && (r = detect_format(v, v->image2, &format2)) < 0)
		return r;
	const int memsize = memsize_mb > 0 ? memsize_mb : DEFAULT_MEMSIZE;
	/* With a /dev/kvm that opens, libguestfs asks QEMU for KVM, and where KVM is broken
	 * QEMU dies while starting the guest (kvm_buf_set_msrs assertion): try KVM, then TCG. */
	int tcg = (flags & IB_VERIFY_FORCE_TCG) || env_forces_tcg() || !kvm_usable() ||
	          __atomic_load_n(&kvm_failed, __ATOMIC_RELAXED);
	double t0 = ib_now();
	ib_log(v->ctx, IB_LOG_INFO, "verify: launching the libguestfs appliance (%s)",
	       tcg ? "TCG" : "KVM");
	r = launch(v, format, format2, memsize, tcg);
	if (r < 0 && !tcg) {
		ib_log(v->ctx, IB_LOG_INFO,
		       "verify: the appliance did not start with KVM (%s); retrying under TCG",
		       sb_str(&v->launch_err));
		__atomic_store_n(&kvm_failed, 1, __ATOMIC_RELAXED);
		tcg = 1;
		r = launch(v, format, format2, memsize, tcg);
	}
	v->rep->launch_seconds = ib_now() - t0;
	v->rep->accel = tcg ? "tcg" : "kvm";
	if (r < 0)
		return ib_error(v->ctx, IB_E_LIB,
		                "cannot examine image '%s'%s%s: the libguestfs appliance did not "
		                "start (%s): %s",
		                v->image, v->image2 ? " and " : "", v->image2 ? v->image2 : "",
		                tcg ? "TCG" : "KVM", sb_str(&v->launch_err));
	/* From here a failed call is a check's result, read with guestfs_last_error. */
	guestfs_set_error_handler(v->g, NULL, NULL);
	ib_log(v->ctx, IB_LOG_INFO, "verify: appliance up in %.1fs", v->rep->launch_seconds);
	return 0;
}

void v_close(struct vctx *v)
{
	if (!v->g)
		return;
	/* Read-only: nothing to sync; close kills QEMU and waits for it. */
	guestfs_close(v->g);
	v->g = NULL;
}

const char *v_err(struct vctx *v)
{
	const char *e = guestfs_last_error(v->g);
	return e ? e : "unknown libguestfs error";
}

static int read_small(struct vctx *v, const char *path, char **ret, size_t *ret_len, char *why,
                      size_t n)
{
	size_t len = 0;
	char *data = guestfs_read_file(v->g, path, &len);
	if (!data) {
		snprintf(why, n, "cannot read %s: %s", path, v_err(v));
		return -1;
	}
	/* read_file's buffer has a NUL after the data, but a copy keeps that our own rule. */
	char *copy = xmalloc(len + 1);
	memcpy(copy, data, len);
	copy[len] = '\0';
	free(data);
	*ret = copy;
	*ret_len = len;
	return 0;
}

/* Larger files come out through a temporary file: download has no message size limit. */
static int read_large(struct vctx *v, const char *path, size_t max, char **ret, size_t *ret_len,
                      char *why, size_t n)
{
	const char *tmpdir = getenv("TMPDIR");
	_cleanup_free_ char *tmp =
	        xasprintf("%s/imgbuild-verify-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, n, "cannot create a temporary file for %s: %s", path,
		         strerror(errno));
		return -1;
	}
	close(fd);
	int r = -1;
	if (guestfs_download(v->g, path, tmp) < 0) {
		snprintf(why, n, "cannot read %s: %s", path, v_err(v));
	} else {
		struct ib_ctx quiet;
		ib_ctx_init(&quiet);
		r = ib_read_file(&quiet, tmp, max, ret, ret_len);
		if (r < 0)
			snprintf(why, n, "cannot read %s: %s", path, quiet.err);
	}
	unlink(tmp);
	return r < 0 ? -1 : 0;
}

int v_read(struct vctx *v, const char *path, size_t max, char **ret, size_t *ret_len, char *why,
           size_t n)
{
	int64_t size = guestfs_filesize(v->g, path);
	if (size < 0) {
		snprintf(why, n, "cannot read %s: %s", path, v_err(v));
		return -1;
	}
	if ((uint64_t)size > max) {
		snprintf(why, n, "%s is %lld bytes, more than the %zu this check reads", path,
		         (long long)size, max);
		return -1;
	}
	if ((uint64_t)size <= READ_FILE_LIMIT)
		return read_small(v, path, ret, ret_len, why, n);
	return read_large(v, path, max, ret, ret_len, why, n);
}

int v_regular(struct vctx *v, const char *path, int64_t *ret_size)
{
	struct guestfs_statns *st = guestfs_statns(v->g, path);
	if (!st)
		return -1;
	int reg = S_ISREG((mode_t)st->st_mode);
	if (ret_size)
		*ret_size = st->st_size;
	guestfs_free_statns(st);
	return reg;
}

const struct vfs *v_find_fs(const struct vctx *v, const char *spec)
{
	int by_uuid = startswith(spec, "UUID=");
	if (!by_uuid && !startswith(spec, "LABEL="))
		return NULL;
	const char *want = strchr(spec, '=') + 1;
	for (size_t i = 0; i < v->n_fs; i++) {
		const struct vfs *f = &v->fs[i];
		/* FAT volume ids are written in either case; labels are exact. */
		if (by_uuid ? *f->uuid && strcasecmp(f->uuid, want) == 0
		            : *f->label && streq(f->label, want))
			return f;
	}
	return NULL;
}
