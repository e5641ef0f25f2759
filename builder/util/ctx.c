/* ctx.c: error recording and log/progress dispatch for the build context. */
#include "ctx.h"

#include <errno.h>
#include <time.h>

volatile int ib_interrupted;

static const char *const code_names[IB_E__MAX] = {
        [IB_OK] = "success",
        [IB_E_USAGE] = "bad usage",
        [IB_E_SPEC] = "bad input",
        [IB_E_IO] = "input/output error",
        [IB_E_TOOL] = "external tool failed",
        [IB_E_LIB] = "library error",
        [IB_E_INTERRUPTED] = "interrupted",
        [IB_E_VERIFY] = "verification failed",
        [IB_E_NETWORK] = "network error",
};

const char *ib_strerror(ib_code code)
{
	if ((unsigned)code >= IB_E__MAX)
		return "unknown error";
	return code_names[code];
}

int ib_exit_status(int rc)
{
	if (rc >= 0)
		return 0;
	if (-rc == IB_E_USAGE || -rc == IB_E_SPEC)
		return 2;
	return 1;
}

void ib_ctx_init(struct ib_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->verbosity = 1;
}

void ib_ctx_init_child(struct ib_ctx *child, const struct ib_ctx *parent, const char *label)
{
	ib_ctx_init(child);
	child->log = parent->log;
	child->progress = parent->progress;
	child->stage = parent->stage;
	child->cb_data = parent->cb_data;
	child->verbosity = parent->verbosity;
	child->label = label;
}

_printf_(4, 0) static int verror(struct ib_ctx *ctx, ib_code code, int errnum, const char *fmt,
                                 va_list ap)
{
	if (ctx->err_code == IB_OK) {
		int n = vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
		if (errnum && n >= 0 && (size_t)n < sizeof(ctx->err))
			snprintf(ctx->err + n, sizeof(ctx->err) - (size_t)n, ": %s",
			         strerror(errnum));
		ctx->err_code = code;
	}
	return -(int)code;
}

int ib_error(struct ib_ctx *ctx, ib_code code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = verror(ctx, code, 0, fmt, ap);
	va_end(ap);
	return r;
}

int ib_error_errno(struct ib_ctx *ctx, ib_code code, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = verror(ctx, code, errnum, fmt, ap);
	va_end(ap);
	return r;
}

void ib_error_prefix(struct ib_ctx *ctx, const char *fmt, ...)
{
	char prefix[512], tmp[sizeof(ctx->err)];

	va_list ap;
	if (ctx->err_code == IB_OK)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	size_t n = strnlen(prefix, sizeof(prefix));
	memcpy(tmp, prefix, n);
	snprintf(tmp + n, sizeof(tmp) - n, ": %.*s", (int)(sizeof(tmp) - n - 3), ctx->err);
	memcpy(ctx->err, tmp, sizeof(tmp));
}

void ib_error_propagate(struct ib_ctx *parent, const struct ib_ctx *child)
{
	if (parent->err_code == IB_OK && child->err_code != IB_OK) {
		memcpy(parent->err, child->err, sizeof(parent->err));
		parent->err_code = child->err_code;
	}
}

void ib_log(struct ib_ctx *ctx, enum ib_log_level lvl, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	if (!ctx->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctx->log(ctx, lvl, msg, ctx->cb_data);
}

void ib_progress(struct ib_ctx *ctx, const char *stage, uint64_t done, uint64_t total)
{
	if (ctx->progress)
		ctx->progress(ctx, stage, done, total, ctx->cb_data);
}

void ib_stage(struct ib_ctx *ctx, const char *stage, int end, double seconds)
{
	if (ctx->stage)
		ctx->stage(ctx, stage, end, seconds, ctx->cb_data);
}

double ib_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
