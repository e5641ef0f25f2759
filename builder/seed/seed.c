/* seed.c: the NoCloud seed image, an ISO 9660 volume labelled cidata, written with libarchive. */
#include "seed/seed.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "util/fs.h"
#include "util/tmpreg.h"

/* cloud-init reads a few kilobytes; anything near these is a mistake. */
#define SEED_MAX_INPUT (16u << 20)
#define SEED_MAX_SIZE  (32u << 20)
#define ISO_BLOCK      2048
#define PVD_OFFSET     (16 * ISO_BLOCK)

/* ---- making the image independent of the clock and the time zone ----
 *
 * libarchive stamps the volume descriptors, the root directory and its "INFO" block with the
 * time of archive_write_close() (an option to set it exists only in its DEBUG builds), and
 * encodes every time in the local time zone. So after writing, every encoding of the close
 * time, and the local encoding of mtime, are rewritten as mtime in UTC. Only the metadata
 * blocks before the first file's data are touched, never the files themselves. */

enum { ENC_915, ENC_8426, ENC_CTIME, N_ENC };
static const size_t enc_len[N_ENC] = {7, 17, 24};

static void encode(int kind, time_t t, int utc, unsigned char *out)
{
	struct tm tm;
	if (utc) {
		gmtime_r(&t, &tm);
	} else {
		tzset();
		localtime_r(&t, &tm);
	}
	/* Offsets from GMT in 15-minute steps, as ISO 9660 8.4.26.1 and 9.1.5 store them. */
	signed char off = utc ? 0 : (signed char)(tm.tm_gmtoff / (60 * 15));
	char buf[64];
	switch (kind) {
	case ENC_915:
		out[0] = (unsigned char)tm.tm_year;
		out[1] = (unsigned char)(tm.tm_mon + 1);
		out[2] = (unsigned char)tm.tm_mday;
		out[3] = (unsigned char)tm.tm_hour;
		out[4] = (unsigned char)tm.tm_min;
		out[5] = (unsigned char)tm.tm_sec;
		out[6] = (unsigned char)off;
		break;
	case ENC_8426:
		snprintf(buf, sizeof(buf), "%04d%02d%02d%02d%02d%02d00", tm.tm_year + 1900,
		         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		memcpy(out, buf, 16);
		out[16] = (unsigned char)off;
		break;
	default:
		/* ctime()'s text without its newline, as the INFO block has it; built by hand
		 * because strftime() would follow the locale and ctime() never does. */
		snprintf(buf, sizeof(buf), "%.3s %.3s%3d %02d:%02d:%02d %d",
		         &"SunMonTueWedThuFriSat"[3 * (tm.tm_wday % 7)],
		         &"JanFebMarAprMayJunJulAugSepOctNovDec"[3 * (tm.tm_mon % 12)], tm.tm_mday,
		         tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
		memset(out, ' ', enc_len[ENC_CTIME]);
		memcpy(out, buf, strnlen(buf, enc_len[ENC_CTIME]));
		break;
	}
}

static void replace_all(unsigned char *buf, size_t len, const unsigned char *from,
                        const unsigned char *to, size_t n)
{
	if (memcmp(from, to, n) == 0)
		return;
	for (size_t i = 0; i + n <= len; i++)
		if (buf[i] == from[0] && memcmp(buf + i, from, n) == 0) {
			memcpy(buf + i, to, n);
			i += n - 1;
		}
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Where the first file's data starts: the lowest extent of a file in the root directory
 * (the seed has no subdirectories), found through the primary volume descriptor. */
static size_t metadata_end(const unsigned char *iso, size_t len)
{
	if (len < PVD_OFFSET + ISO_BLOCK || iso[PVD_OFFSET] != 1)
		return 0;
	const unsigned char *root = iso + PVD_OFFSET + 156;
	size_t dir = (size_t)le32(root + 2) * ISO_BLOCK, dlen = le32(root + 10);
	if (dir >= len || dlen > len - dir)
		return 0;
	size_t end = len;
	for (size_t off = 0; off < dlen;) {
		const unsigned char *rec = iso + dir + off;
		if (rec[0] == 0) {
			off = (off / ISO_BLOCK + 1) * ISO_BLOCK; /* records do not cross blocks */
			continue;
		}
		if (rec[0] < 34 || off + rec[0] > dlen)
			return 0;
		size_t extent = (size_t)le32(rec + 2) * ISO_BLOCK;
		if (!(rec[25] & 2) && le32(rec + 10) > 0 && extent < end)
			end = extent;
		off += rec[0];
	}
	return end;
}

static int normalise_times(struct ib_ctx *ctx, int fd, const char *tmp, time_t closed_from,
                           time_t closed_to, time_t mtime)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot read '%s'", tmp);
	if (st.st_size > (off_t)SEED_MAX_SIZE)
		return ib_error(ctx, IB_E_SPEC, "the seed image would be larger than %u bytes",
		                SEED_MAX_SIZE);
	size_t len = (size_t)st.st_size;
	_cleanup_free_ unsigned char *iso = xmalloc(len ? len : 1);
	if (pread(fd, iso, len, 0) != (ssize_t)len)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot read '%s'", tmp);
	size_t end = metadata_end(iso, len);
	if (end == 0)
		return ib_error(ctx, IB_E_LIB,
		                "'%s': libarchive wrote an ISO image this code cannot read", tmp);
	for (int k = 0; k < N_ENC; k++) {
		unsigned char from[32], to[32];
		encode(k, mtime, 1, to);
		for (time_t t = closed_from; t <= closed_to; t++) {
			encode(k, t, 0, from);
			replace_all(iso, end, from, to, enc_len[k]);
		}
		encode(k, mtime, 0, from);
		replace_all(iso, end, from, to, enc_len[k]);
	}
	if (pwrite(fd, iso, end, 0) != (ssize_t)end)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot write '%s'", tmp);
	return 0;
}

/* ---- writing ---- */

/* libarchive says only "Write error" for a full disk: the errno behind it says why. */
static int write_error(struct ib_ctx *ctx, struct archive *a, const char *tmp)
{
	int e = archive_errno(a);
	if (e > 0)
		return ib_error_errno(ctx, IB_E_IO, e, "cannot write '%s'", tmp);
	return ib_error(ctx, IB_E_LIB, "cannot write '%s': %s", tmp, archive_error_string(a));
}

static int add_file(struct ib_ctx *ctx, struct archive *a, const char *name, const char *text,
                    time_t mtime, const char *tmp)
{
	struct archive_entry *ae = archive_entry_new();
	if (!ae)
		return ib_error(ctx, IB_E_LIB, "out of memory");
	size_t len = strlen(text);
	archive_entry_copy_pathname(ae, name);
	archive_entry_set_filetype(ae, AE_IFREG);
	archive_entry_set_perm(ae, 0644);
	archive_entry_set_uid(ae, 0);
	archive_entry_set_gid(ae, 0);
	archive_entry_set_mtime(ae, mtime, 0);
	archive_entry_set_atime(ae, mtime, 0);
	archive_entry_set_ctime(ae, mtime, 0);
	archive_entry_set_birthtime(ae, mtime, 0);
	archive_entry_set_size(ae, (la_int64_t)len);
	int r = 0;
	if (archive_write_header(a, ae) < ARCHIVE_WARN ||
	    (len > 0 && archive_write_data(a, text, len) != (la_ssize_t)len))
		r = write_error(ctx, a, tmp);
	archive_entry_free(ae);
	return r;
}

static int write_iso(struct ib_ctx *ctx, int fd, const char *tmp, const char *user_data,
                     const char *meta_data, const char *network_config, time_t mtime)
{
	struct archive *a = archive_write_new();
	if (!a)
		return ib_error(ctx, IB_E_LIB, "out of memory");
	int r = 0;
	/* The primary volume descriptor holds d-characters only, so libarchive writes the label
	 * as CIDATA there; the Joliet descriptor keeps "cidata" (what blkid shows). NoCloud
	 * accepts either. Rock Ridge "strict" keeps the modes and owners given; "useful" (the
	 * default) would make the files r--r--r--. */
	if (archive_write_set_format_iso9660(a) != ARCHIVE_OK ||
	    archive_write_set_options(
	            a, "iso9660:volume-id=cidata,iso9660:rockridge=strict,iso9660:joliet") !=
	            ARCHIVE_OK ||
	    archive_write_open_fd(a, fd) != ARCHIVE_OK) {
		r = ib_error(ctx, IB_E_LIB, "cannot write '%s': %s", tmp, archive_error_string(a));
		archive_write_free(a);
		return r;
	}
	r = add_file(ctx, a, "user-data", user_data, mtime, tmp);
	if (r == 0)
		r = add_file(ctx, a, "meta-data", meta_data, mtime, tmp);
	if (r == 0 && network_config)
		r = add_file(ctx, a, "network-config", network_config, mtime, tmp);
	time_t closed_from = time(NULL);
	if (r == 0 && archive_write_close(a) != ARCHIVE_OK)
		r = write_error(ctx, a, tmp);
	time_t closed_to = time(NULL);
	archive_write_free(a);
	if (r == 0)
		r = normalise_times(ctx, fd, tmp, closed_from, closed_to, mtime);
	return r;
}

int ib_seed_write(struct ib_ctx *ctx, const char *out_iso, const char *user_data,
                  const char *meta_data, const char *network_config, time_t mtime)
{
	size_t in = strlen(user_data) + strlen(meta_data) +
	            (network_config ? strlen(network_config) : 0);
	if (in > SEED_MAX_INPUT)
		return ib_error(
		        ctx, IB_E_SPEC,
		        "user-data, meta-data and network-config add up to more than %u bytes",
		        SEED_MAX_INPUT);
	_cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", out_iso, (int)getpid());
	ib_tmp_register(tmp);
	int r;
	/* user-data may hold secrets (a cluster's token and keys): the file is 0600 from its
	 * creation on, whatever the umask, and a stale temporary file's mode is never reused. */
	unlink(tmp);
	int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = ib_error_errno(ctx, IB_E_IO, errno, "cannot create '%s'", tmp);
	} else {
		r = fchmod(fd, 0600) < 0 ? ib_error_errno(ctx, IB_E_IO, errno,
		                                          "cannot set the mode of '%s'", tmp)
		                         : 0;
		if (r == 0)
			r = write_iso(ctx, fd, tmp, user_data, meta_data, network_config, mtime);
		if (r == 0 && fsync(fd) < 0)
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot write '%s'", tmp);
		if (close(fd) < 0 && r == 0)
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot write '%s'", tmp);
		if (r == 0 && rename(tmp, out_iso) < 0)
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot rename '%s' to '%s'", tmp,
			                   out_iso);
		if (r < 0)
			unlink(tmp);
	}
	ib_tmp_unregister(tmp);
	return r;
}
