/* proc.h: running external tools (mmdebstrap, mkfs, qemu-img...) without a shell. */
#pragma once

#include "ctx.h"
#include "strbuf.h"

enum {
	IB_RUN_CAPTURE_STDOUT = 1 << 0, /* collect stdout into *ret_out */
	IB_RUN_STDOUT_TO_LOG = 1 << 1,  /* forward stdout lines to the debug log */
};

/* Run argv[0] (looked up in PATH) with argv, extra environment entries "K=V" (may be NULL),
 * in its own process group so that an interrupt kills the whole tree.
 * stderr is logged at debug level and its last lines go into the error message on failure.
 * With IB_RUN_CAPTURE_STDOUT, *ret_out receives stdout (at most 64 MiB); caller frees.
 * Returns 0 when the program exits 0, else -IB_E_TOOL with the message recorded. */
int ib_run(struct ib_ctx *ctx, const char *const argv[], const char *const env[], unsigned flags,
           char **ret_out);

/* Is argv0 found in PATH? */
int ib_have_program(const char *argv0);

/* Kill every running child's process group (SIGTERM, then SIGKILL). Async-signal-safe. */
void ib_kill_children(void);
