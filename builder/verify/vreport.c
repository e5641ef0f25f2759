/* vreport.c: the list of check results a verification hands back. */
#include "util/strbuf.h"
#include "verify_int.h"

#define MAX_DETAIL 2048 /* a result's detail stays one readable line */

void v_result(struct vctx *v, const char *name, int ok, const char *fmt, ...)
{
	struct ib_verify_report *r = v->rep;
	if (r->n == r->alloc) {
		r->alloc = r->alloc ? r->alloc * 2 : 32;
		r->results = xrealloc(r->results, r->alloc * sizeof(*r->results));
	}
	char buf[MAX_DETAIL];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* Text from the image ends up here: no control characters in a table or a log. */
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	r->results[r->n++] = (struct ib_verify_result){xstrdup(name), ok ? 1 : 0, xstrdup(buf)};
	if (!ok)
		r->n_failed++;
	ib_log(v->ctx, IB_LOG_DEBUG, "verify: %s: %s: %s", name, ok ? "pass" : "FAIL", buf);
}

void ib_verify_report_release(struct ib_verify_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->results[i].name);
		free(r->results[i].detail);
	}
	free(r->results);
	memset(r, 0, sizeof(*r));
}
