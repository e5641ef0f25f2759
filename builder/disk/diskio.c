/* diskio.c: whole-buffer positional reads and writes on a disk image. */
#include "diskio.h"

#include <errno.h>

int ib_disk_pwrite(struct ib_ctx *ctx, int fd, const char *path, const void *buf, size_t len,
                   uint64_t off)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ib_error_errno(ctx, IB_E_IO, errno, "cannot write '%s' at byte %llu",
			                      path, (unsigned long long)off);
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int ib_disk_pread(struct ib_ctx *ctx, int fd, const char *path, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ib_error_errno(ctx, IB_E_IO, errno, "cannot read '%s' at byte %llu",
			                      path, (unsigned long long)off);
		}
		if (n == 0)
			return ib_error(ctx, IB_E_IO,
			                "cannot read '%s' at byte %llu: unexpected end of file",
			                path, (unsigned long long)off);
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}
