/* ctx.h: the build context: one recorded error, logging and progress callbacks.
 *
 * Stage code never prints. It returns 0 or a negative ib_code and records one
 * message on the context (the first error wins, later ones are context noise).
 * The command line prints that message once and maps the code to an exit status.
 */
#pragma once

#include <pthread.h>

#include "util.h"

typedef enum {
	IB_OK = 0,
	IB_E_USAGE,       /* bad command line: exit 2 */
	IB_E_SPEC,        /* bad spec or other bad input: exit 2 */
	IB_E_IO,          /* a file or directory operation failed */
	IB_E_TOOL,        /* an external program failed */
	IB_E_LIB,         /* a foreign library reported an error */
	IB_E_INTERRUPTED, /* SIGINT or SIGTERM */
	IB_E_VERIFY,      /* a produced artifact failed a check */
	IB_E_NETWORK,     /* a download failed */
	IB_E__MAX
} ib_code;

const char *ib_strerror(ib_code code);
/* 0 for IB_OK, 2 for usage and bad input, 1 for every other failure. */
int ib_exit_status(int rc);

enum ib_log_level { IB_LOG_ERROR, IB_LOG_WARN, IB_LOG_INFO, IB_LOG_DEBUG };

struct ib_ctx;
typedef void (*ib_log_fn)(struct ib_ctx *ctx, enum ib_log_level lvl, const char *msg, void *data);
/* A stage reports progress as done/total units of work (total 0: unknown). */
typedef void (*ib_progress_fn)(struct ib_ctx *ctx, const char *stage, uint64_t done, uint64_t total,
                               void *data);

/* A pipeline stage starts (end 0) or ends (end 1, after seconds). */
typedef void (*ib_stage_fn)(struct ib_ctx *ctx, const char *stage, int end, double seconds,
                            void *data);

struct ib_ctx {
	char err[2048];
	ib_code err_code;
	const char *label; /* prefixed to log lines, e.g. the role name; not owned */
	ib_log_fn log;
	ib_progress_fn progress;
	ib_stage_fn stage;
	void *cb_data;
	int verbosity; /* 0 quiet, 1 normal, 2 verbose */
};

void ib_ctx_init(struct ib_ctx *ctx);
/* A child context for one job: same callbacks, its own error slot. */
void ib_ctx_init_child(struct ib_ctx *child, const struct ib_ctx *parent, const char *label);

/* Record an error (only the first one sticks) and return -code. */
int ib_error(struct ib_ctx *ctx, ib_code code, const char *fmt, ...) _printf_(3, 4);
/* Same, appending ": strerror(errnum)". */
int ib_error_errno(struct ib_ctx *ctx, ib_code code, int errnum, const char *fmt, ...)
        _printf_(4, 5);
/* Prefix the recorded message with more context ("building 'base': ..."). */
void ib_error_prefix(struct ib_ctx *ctx, const char *fmt, ...) _printf_(2, 3);
/* Copy a child's error into a parent that has none yet. */
void ib_error_propagate(struct ib_ctx *parent, const struct ib_ctx *child);

void ib_log(struct ib_ctx *ctx, enum ib_log_level lvl, const char *fmt, ...) _printf_(3, 4);
void ib_progress(struct ib_ctx *ctx, const char *stage, uint64_t done, uint64_t total);
void ib_stage(struct ib_ctx *ctx, const char *stage, int end, double seconds);
/* Monotonic seconds, for stage timings. */
double ib_now(void);

/* Set once SIGINT or SIGTERM arrives; long loops poll it. */
extern volatile int ib_interrupted;
