/* diskio.h: whole-buffer positional reads and writes on a disk image. */
#pragma once

#include <sys/types.h>

#include "util/ctx.h"

/* Write or read exactly len bytes at off, retrying short transfers and EINTR.
 * A read past the end of the file is an error. path is for messages. */
int ib_disk_pwrite(struct ib_ctx *ctx, int fd, const char *path, const void *buf, size_t len,
                   uint64_t off);
int ib_disk_pread(struct ib_ctx *ctx, int fd, const char *path, void *buf, size_t len,
                  uint64_t off);

static inline void ib_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void ib_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void ib_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t ib_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t ib_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t ib_get_le64(const uint8_t *p)
{
	return (uint64_t)ib_get_le32(p) | (uint64_t)ib_get_le32(p + 4) << 32;
}
