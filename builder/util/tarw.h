/* tarw.h: opening the deterministic tar writer the layer and the OCI archives share. */
#pragma once

#include <archive.h>

#include "ctx.h"

/* A libarchive writer on fd in pax_restricted format, no filter: plain ustar headers, an
 * extended header only for what ustar cannot hold (long names, big ids), and none of the
 * per-run attributes full pax adds. NULL with the error recorded (naming what) on failure;
 * the caller closes and frees the writer. */
struct archive *ib_tar_writer_open(struct ib_ctx *ctx, int fd, const char *what);
