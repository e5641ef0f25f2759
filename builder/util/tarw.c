/* tarw.c: the deterministic tar writer setup shared by layers and OCI archives. */
#include "tarw.h"

struct archive *ib_tar_writer_open(struct ib_ctx *ctx, int fd, const char *what)
{
	struct archive *a = archive_write_new();
	if (!a) {
		ib_error(ctx, IB_E_LIB, "out of memory");
		return NULL;
	}
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_add_filter_none(a) != ARCHIVE_OK ||
	    archive_write_open_fd(a, fd) != ARCHIVE_OK) {
		ib_error(ctx, IB_E_LIB, "cannot write '%s': %s", what, archive_error_string(a));
		archive_write_free(a);
		return NULL;
	}
	return a;
}
