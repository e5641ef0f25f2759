/* fetch.c: many pinned downloads at once on libcurl's multi interface, into the cache. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <openssl/evp.h>

#include "http_int.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/strbuf.h"

#define MAX_REDIRECTS   10
#define CHECKSUM_MAX    (1 << 20) /* a checksum file is a few lines */
#define LOCK_POLL_S     0.2       /* how often to look again at an entry another process holds */
#define PROGRESS_EVERY  0.1
#define FAIL_LIST_BYTES 1600 /* of the final message; the context holds 2048 */

enum xstate {
	X_QUEUED,  /* waiting for a slot (or for not_before: backoff, another process's lock) */
	X_RUNNING, /* in the multi handle */
	X_DONE,    /* item->rc says how it ended */
};

enum abort_reason { AB_NONE, AB_TOO_BIG, AB_IO, AB_RANGE };

struct xfer {
	struct ib_fetch_item *it;
	const char *what;
	char *url;        /* current: after the mirror and any redirects */
	char *origin_url; /* what the caller's headers were meant for */
	int cross_origin; /* a redirect left that origin: credentials dropped */
	enum xstate state;
	double not_before;
	int attempt;   /* failed attempts so far */
	int redirects; /* in this attempt chain */
	int lock_fd;   /* tmp/<hex>.lock, held from preparation to the end */
	int prepared;
	char *part; /* tmp/<hex>.part: the bytes so far, all of them hashed in hash */
	int fd;
	uint64_t offset;
	struct ib_sha256 hash;
	int stale_prefix; /* the part began with bytes from an earlier run */
	uint64_t limit;   /* most bytes accepted */
	uint64_t total;   /* expected size when known (from the item or the response), or 0 */
	/* per attempt */
	CURL *easy;
	struct curl_slist *hdrs;
	char errbuf[CURL_ERROR_SIZE];
	char range[32];
	int is_http;
	int body_started;
	int discard; /* a redirect's or an unexpected response's body */
	enum abort_reason abort;
	int io_errno;
	int have_cr;
	uint64_t cr_start, cr_total;
};

/* ---- the part file and its running hash ---- */

static void part_close(struct xfer *x)
{
	if (x->fd >= 0)
		close(x->fd);
	x->fd = -1;
}

/* Forget the bytes so far: the next attempt starts from zero. */
static int part_reset(struct xfer *x)
{
	if (x->fd >= 0 && ftruncate(x->fd, 0) < 0)
		return -errno;
	if (x->fd < 0 && truncate(x->part, 0) < 0 && errno != ENOENT)
		return -errno;
	ib_sha256_release(&x->hash);
	ib_sha256_init(&x->hash);
	x->offset = 0;
	x->stale_prefix = 0;
	return 0;
}

/* The digest of what was hashed so far, without ending the running hash. */
static void hash_peek(struct ib_sha256 *h, char out[IB_SHA256_HEX])
{
	struct ib_sha256 copy;
	ib_sha256_init(&copy);
	if (EVP_MD_CTX_copy_ex(copy.md, h->md) != 1)
		abort();
	ib_sha256_final_hex(&copy, out);
}

static int write_all_at(int fd, const char *p, size_t n, off_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		off += w;
		n -= (size_t)w;
	}
	return 0;
}

/* ---- curl callbacks ---- */

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
	struct xfer *x = userp;
	size_t n = size * nmemb;
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		x->have_cr = 0;
	} else if (n > 14 && strncasecmp(data, "Content-Range:", 14) == 0) {
		unsigned long long s, e, t;
		char tail[16];
		_cleanup_free_ char *h = xstrndup(data + 14, n - 14);
		if (sscanf(h, " bytes %llu-%llu/%llu", &s, &e, &t) == 3) {
			x->have_cr = 1;
			x->cr_start = s;
			x->cr_total = t;
		} else if (sscanf(h, " bytes %llu-%llu/%15s", &s, &e, tail) == 3) {
			x->have_cr = 1;
			x->cr_start = s;
			x->cr_total = 0;
		}
	}
	return n;
}

/* The first body bytes of an attempt: decide what the response means for the part. */
static int body_start(struct xfer *x)
{
	x->body_started = 1;
	long code = 0;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	curl_off_t cl = -1;
	curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	if (!x->is_http) {
		if (cl >= 0 && !x->total)
			x->total = x->offset + (uint64_t)cl;
		return 0;
	}
	if (code == 206) {
		/* A range we did not ask for would splice the wrong bytes onto the part. */
		if (!x->have_cr || x->cr_start != x->offset) {
			x->abort = AB_RANGE;
			return -1;
		}
		if (x->cr_total && !x->total)
			x->total = x->cr_total;
	} else if (code == 200) {
		/* The server ignored the Range: the whole body follows, start over. */
		if (x->offset > 0) {
			int r = part_reset(x);
			if (r < 0) {
				x->abort = AB_IO;
				x->io_errno = -r;
				return -1;
			}
		}
		if (cl >= 0 && !x->total)
			x->total = (uint64_t)cl;
	} else {
		x->discard = 1;
	}
	return 0;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp)
{
	struct xfer *x = userp;
	size_t n = size * nmemb;
	if (!x->body_started && body_start(x) < 0)
		return 0;
	if (x->discard)
		return n;
	if (x->offset + n > x->limit) {
		x->abort = AB_TOO_BIG;
		return 0;
	}
	int r = write_all_at(x->fd, data, n, (off_t)x->offset);
	if (r < 0) {
		x->abort = AB_IO;
		x->io_errno = -r;
		return 0;
	}
	/* Hash as the bytes arrive: the digest is ready the moment the body ends. */
	ib_sha256_update(&x->hash, data, n);
	x->offset += n;
	return n;
}

/* ---- the life of one item ---- */

static void xfer_end(struct xfer *x)
{
	part_close(x);
	/* An empty part helps no later resume. */
	if (x->prepared && x->offset == 0 && x->it->rc < 0)
		unlink(x->part);
	if (x->lock_fd >= 0) {
		/* Unlinked while held, so that tmp/ does not fill with locks: a process that
		 * opened it meanwhile sees the inode change and takes a new one. */
		_cleanup_free_ char *lock = xstrdup(x->part);
		strcpy(lock + strlen(lock) - strlen(".part"), ".lock");
		unlink(lock);
		close(x->lock_fd);
	}
	x->lock_fd = -1;
	ib_sha256_release(&x->hash);
	x->state = X_DONE;
}

/* The item ends with this error; returns -1 so that callers can `return xfer_fail(...)`. */
static int _printf_(3, 4) xfer_fail(struct xfer *x, ib_code code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->it->err, sizeof(x->it->err), fmt, ap);
	va_end(ap);
	x->it->rc = -(int)code;
	xfer_end(x);
	return -1;
}

static int xfer_fail_ctx(struct xfer *x, const struct ib_ctx *c)
{
	return xfer_fail(x, c->err_code ? c->err_code : IB_E_NETWORK, "%s", c->err);
}

static void xfer_done_cached(struct xfer *x, const struct ib_cas *cas, int cached)
{
	x->it->path = ib_cas_path(cas, x->it->digest);
	x->it->cached = cached;
	x->it->rc = 0;
	x->total = x->offset = (uint64_t)ib_file_size(x->it->path);
	xfer_end(x);
}

static int commit(struct ib_ctx *ctx, struct xfer *x, const struct ib_cas *cas)
{
	char actual[IB_SHA256_HEX];
	hash_peek(&x->hash, actual);
	part_close(x);
	struct ib_ctx c;
	ib_ctx_init_child(&c, ctx, NULL);
	/* A mismatch names where the bytes came from: the same item may come from a mirror. */
	_cleanup_free_ char *what = xasprintf("%s (%s)", x->what, x->url);
	if (ib_cas_commit_hashed(&c, cas, x->part, x->it->digest, actual, what) < 0)
		return xfer_fail_ctx(x, &c);
	xfer_done_cached(x, cas, 0);
	return 0;
}

/* Resume: the digest covers the whole entry, so the part's bytes are hashed first. */
static int hash_prefix(struct xfer *x, uint64_t size)
{
	const size_t bufsz = 1 << 20;
	_cleanup_free_ char *buf = xmalloc(bufsz);
	while (x->offset < size) {
		ssize_t n = pread(x->fd, buf, bufsz, (off_t)x->offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break; /* shrank under us: resume from what is there */
		ib_sha256_update(&x->hash, buf, (size_t)n);
		x->offset += (uint64_t)n;
	}
	/* The file must hold exactly the hashed bytes. */
	if (ftruncate(x->fd, (off_t)x->offset) < 0)
		return -errno;
	return 0;
}

/* Under the entry lock: is it cached now, or is a complete part waiting? Opens the part and
 * hashes what it holds. 1 when the item is finished, 0 ready to transfer. */
static int xfer_prepare(struct ib_ctx *ctx, struct xfer *x, const struct ib_cas *cas)
{
	struct ib_ctx c;
	ib_ctx_init_child(&c, ctx, NULL);
	int r = ib_cas_lookup(&c, cas, x->it->digest, 1, NULL);
	if (r < 0) {
		xfer_fail_ctx(x, &c);
		return 1;
	}
	if (r > 0) { /* another process fetched it while we waited for the lock */
		xfer_done_cached(x, cas, 1);
		return 1;
	}
	x->prepared = 1;
	x->fd = open(x->part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (x->fd < 0) {
		xfer_fail(x, IB_E_IO, "cannot open '%s': %s", x->part, strerror(errno));
		return 1;
	}
	struct stat st;
	if (fstat(x->fd, &st) < 0) {
		xfer_fail(x, IB_E_IO, "cannot stat '%s': %s", x->part, strerror(errno));
		return 1;
	}
	ib_sha256_init(&x->hash);
	x->offset = 0;
	if (st.st_size == 0)
		return 0;
	if ((uint64_t)st.st_size > x->limit || hash_prefix(x, (uint64_t)st.st_size) < 0) {
		if (part_reset(x) < 0) {
			xfer_fail(x, IB_E_IO, "cannot reset '%s': %s", x->part, strerror(errno));
			return 1;
		}
		return 0;
	}
	x->stale_prefix = 1;
	char actual[IB_SHA256_HEX];
	hash_peek(&x->hash, actual);
	if (streq(actual, x->it->digest)) { /* complete: an earlier run stopped before rename */
		commit(ctx, x, cas);
		return 1;
	}
	ib_log(ctx, IB_LOG_DEBUG, "%s: resuming at byte %llu", x->what,
	       (unsigned long long)x->offset);
	return 0;
}

static int xfer_start(CURLM *m, struct xfer *x, const struct ib_fetch_opts *o)
{
	/* The fd stays open across attempts; make sure the file holds exactly what was hashed
	 * (a failed write may have left a tail). */
	if (ftruncate(x->fd, (off_t)x->offset) < 0) {
		xfer_fail(x, IB_E_IO, "cannot truncate '%s': %s", x->part, strerror(errno));
		return -1;
	}
	x->easy = curl_easy_init();
	if (!x->easy)
		abort();
	ib_curl_setup(x->easy, o, x->errbuf);
	x->hdrs = ib_curl_headers(x->it->headers, x->cross_origin);
	x->is_http = ib_url_is_http(x->url);
	x->body_started = 0;
	x->discard = 0;
	x->abort = AB_NONE;
	x->have_cr = 0;
	curl_easy_setopt(x->easy, CURLOPT_URL, x->url);
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
	/* 4xx/5xx end the attempt before any body: an error page never reaches the part. */
	curl_easy_setopt(x->easy, CURLOPT_FAILONERROR, 1L);
	if (x->offset > 0) {
		snprintf(x->range, sizeof(x->range), "%llu-", (unsigned long long)x->offset);
		curl_easy_setopt(x->easy, CURLOPT_RANGE, x->range);
	}
	if (curl_multi_add_handle(m, x->easy) != CURLM_OK)
		abort();
	x->state = X_RUNNING;
	return 0;
}

static void xfer_detach(CURLM *m, struct xfer *x)
{
	curl_multi_remove_handle(m, x->easy);
	curl_easy_cleanup(x->easy);
	x->easy = NULL;
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
}

/* A failed attempt: try again after a delay, or give up. */
static int xfer_retry(struct ib_ctx *ctx, struct xfer *x, const struct ib_fetch_opts *o,
                      const char *why, long retry_after)
{
	x->attempt++;
	if (x->attempt > o->retries)
		return xfer_fail(x, IB_E_NETWORK, "%s (%s): %s%s", x->what, x->url, why,
		                 o->retries ? " (retries exhausted)" : "");
	long delay = ib_retry_delay_ms(o, x->attempt, retry_after);
	ib_log(ctx, IB_LOG_DEBUG, "%s: %s; retry %d of %d in %ld ms", x->what, why, x->attempt,
	       o->retries, delay);
	x->redirects = 0;
	x->state = X_QUEUED;
	x->not_before = ib_now() + (double)delay / 1000.0;
	return 0;
}

/* An attempt ended: redirect, commit, retry or fail. 0 or -1 (the item failed). */
static int xfer_finished(struct ib_ctx *ctx, CURLM *m, struct xfer *x, CURLcode res,
                         const struct ib_fetch_opts *o, const struct ib_cas *cas)
{
	long status = 0;
	curl_off_t retry_after = 0;
	char *loc = NULL;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &retry_after);
	if (x->is_http && res == CURLE_OK && status >= 300 && status < 400)
		curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_URL, &loc);
	_cleanup_free_ char *next = loc ? xstrdup(loc) : NULL;
	char why[CURL_ERROR_SIZE + 64];
	ib_curl_describe(res, status, x->errbuf, why, sizeof(why));
	xfer_detach(m, x);

	if (res == CURLE_OK && x->is_http && status >= 300 && status < 400) {
		if (!next)
			return xfer_fail(x, IB_E_NETWORK, "%s (%s): HTTP %ld without a Location",
			                 x->what, x->url, status);
		if (++x->redirects > MAX_REDIRECTS)
			return xfer_fail(x, IB_E_NETWORK, "%s (%s): too many redirects", x->what,
			                 x->url);
		if (!ib_url_is_http(next))
			return xfer_fail(x, IB_E_NETWORK, "%s: refusing redirect from %s to %s",
			                 x->what, x->url, next);
		if (!ib_url_same_origin(x->origin_url, next))
			x->cross_origin = 1;
		free(x->url);
		x->url = TAKE_PTR(next);
		x->state = X_QUEUED;
		x->not_before = 0;
		return 0;
	}
	if (res == CURLE_OK) {
		if (x->is_http && status != 200 && status != 206)
			return xfer_fail(x, IB_E_NETWORK, "%s (%s): unexpected HTTP status %ld",
			                 x->what, x->url, status);
		/* An empty 200 to a Range request: the entry is empty, not our prefix. */
		if (x->is_http && status == 200 && !x->body_started && x->offset > 0 &&
		    part_reset(x) < 0)
			return xfer_fail(x, IB_E_IO, "cannot reset '%s'", x->part);
		char actual[IB_SHA256_HEX];
		hash_peek(&x->hash, actual);
		if (!streq(actual, x->it->digest) && x->stale_prefix) {
			/* The prefix from an earlier run may be what is wrong: once, from zero. */
			ib_log(ctx, IB_LOG_DEBUG,
			       "%s: digest mismatch after resuming; starting over", x->what);
			if (part_reset(x) < 0)
				return xfer_fail(x, IB_E_IO, "cannot reset '%s'", x->part);
			x->state = X_QUEUED;
			x->not_before = 0;
			return 0;
		}
		return commit(ctx, x, cas);
	}
	switch (x->abort) {
	case AB_TOO_BIG:
		part_close(x);
		unlink(x->part);
		return xfer_fail(x, IB_E_VERIFY, "%s (%s): larger than %s%llu bytes", x->what,
		                 x->url, x->it->size ? "its declared " : "the limit of ",
		                 (unsigned long long)x->limit);
	case AB_IO:
		return xfer_fail(x, IB_E_IO, "%s (%s): cannot write '%s': %s", x->what, x->url,
		                 x->part, strerror(x->io_errno));
	case AB_RANGE:
		if (part_reset(x) < 0)
			return xfer_fail(x, IB_E_IO, "cannot reset '%s'", x->part);
		return xfer_retry(ctx, x, o, "the server answered another range", 0);
	case AB_NONE: break;
	}
	/* The part is longer than the entry (changed upstream, or a mirror's other copy). */
	if ((res == CURLE_HTTP_RETURNED_ERROR && status == 416) || res == CURLE_RANGE_ERROR ||
	    res == CURLE_BAD_DOWNLOAD_RESUME) {
		if (x->offset > 0) {
			if (part_reset(x) < 0)
				return xfer_fail(x, IB_E_IO, "cannot reset '%s'", x->part);
			return xfer_retry(ctx, x, o, why, 0);
		}
	}
	if (ib_http_retryable(res, status))
		return xfer_retry(ctx, x, o, why, (long)retry_after);
	return xfer_fail(x, IB_E_NETWORK, "%s (%s): %s", x->what, x->url, why);
}

/* ---- resolving published checksums ---- */

static int resolve_checksum(struct ib_ctx *ctx, const struct ib_cas *cas,
                            const struct ib_fetch_opts *o, struct ib_fetch_item *it, char hex[65])
{
	_cleanup_free_ char *name = ib_url_basename(it->url);
	_cleanup_free_ char *refname = xasprintf("%s %s", it->checksum_url, name);
	int r = ib_cas_ref_get(ctx, cas, "checksum", refname, hex);
	if (r != 0)
		return r < 0 ? r : 0;
	_cleanup_free_ char *url = ib_mirror_url(o->mirror, it->checksum_url);
	if (o->offline && !ib_url_is_file(url))
		return ib_error(ctx, IB_E_NETWORK, "its checksum (%s) is not in the cache",
		                it->checksum_url);
	_cleanup_free_ char *body = NULL;
	long status = 0;
	r = ib_http_get(ctx, o, url, NULL, CHECKSUM_MAX, &body, NULL, &status, NULL);
	if (r < 0)
		return r;
	if (ib_url_is_http(url) && status != 200)
		return ib_error(ctx, IB_E_NETWORK, "cannot fetch checksum %s: HTTP status %ld", url,
		                status);
	r = ib_checksum_parse(ctx, body, name, hex);
	if (r < 0) {
		ib_error_prefix(ctx, "checksum %s", url);
		return r;
	}
	return ib_cas_ref_set(ctx, cas, "checksum", refname, hex);
}

/* ---- the batch ---- */

static void report_progress(struct ib_ctx *ctx, const struct xfer *xs, size_t n)
{
	uint64_t done = 0, total = 0;
	int known = 1;
	for (size_t i = 0; i < n; i++) {
		done += xs[i].offset;
		if (xs[i].total)
			total += xs[i].total;
		else if (!(xs[i].state == X_DONE && xs[i].it->rc < 0))
			known = 0;
	}
	ib_progress(ctx, "fetch", done, known ? total : 0);
}

static void fail_message(struct ib_ctx *ctx, struct ib_fetch_item *items, size_t n, int offline)
{
	size_t failed = 0, shown = 0;
	ib_code first = IB_OK;
	for (size_t i = 0; i < n; i++)
		if (items[i].rc < 0) {
			failed++;
			if (first == IB_OK)
				first = (ib_code)-items[i].rc;
		}
	struct strbuf sb = STRBUF_INIT;
	if (offline)
		sb_addf(&sb, "offline, and %zu of %zu items are not in the cache: ", failed, n);
	else if (failed > 1)
		sb_addf(&sb, "cannot fetch %zu of %zu items: ", failed, n);
	else
		sb_adds(&sb, "cannot fetch ");
	for (size_t i = 0; i < n; i++) {
		if (items[i].rc >= 0)
			continue;
		/* Each on the log as well, in case the list is cut. */
		ib_log(ctx, IB_LOG_INFO, "fetch failed: %s", items[i].err);
		if (sb.len < FAIL_LIST_BYTES) {
			sb_addf(&sb, "%s%s", shown ? "; " : "", items[i].err);
			shown++;
		}
	}
	if (shown < failed)
		sb_addf(&sb, "; and %zu more (see -v)", failed - shown);
	ib_error(ctx, first, "%s", sb_str(&sb));
	sb_release(&sb);
}

static void sleep_s(double s)
{
	if (s <= 0)
		return;
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	nanosleep(&ts, NULL);
}

static void xfer_release(struct xfer *x)
{
	free(x->url);
	free(x->origin_url);
	free(x->part);
	ib_sha256_release(&x->hash);
	part_close(x);
	if (x->lock_fd >= 0)
		close(x->lock_fd);
}

void ib_fetch_item_release(struct ib_fetch_item *it)
{
	free(it->path);
	it->path = NULL;
}

/* Checksums resolved, cache looked at: which items still need the network. */
static void plan(struct ib_ctx *ctx, const struct ib_cas *cas, const struct ib_fetch_opts *o,
                 struct xfer *xs, size_t n, int *missing_offline)
{
	for (size_t i = 0; i < n; i++) {
		struct xfer *x = &xs[i];
		struct ib_fetch_item *it = x->it;
		struct ib_ctx c;
		ib_ctx_init_child(&c, ctx, NULL);
		if (!it->url || !*it->url) {
			xfer_fail(x, IB_E_SPEC, "%s: no URL", x->what);
			continue;
		}
		x->url = ib_mirror_url(o->mirror, it->url);
		x->origin_url = xstrdup(x->url);
		if (it->sha256) {
			size_t l = strlen(it->sha256);
			for (size_t k = 0; k < l && k < 64; k++)
				it->digest[k] = (char)tolower((unsigned char)it->sha256[k]);
			it->digest[l < 64 ? l : 64] = '\0';
			if (l != 64 || !ib_cas_hex_valid(it->digest)) {
				xfer_fail(x, IB_E_SPEC, "%s: bad sha256 '%s'", x->what, it->sha256);
				continue;
			}
		} else if (it->checksum_url) {
			if (resolve_checksum(&c, cas, o, it, it->digest) < 0) {
				xfer_fail(x, c.err_code, "%s (%s): %s", x->what, it->url, c.err);
				if (o->offline && c.err_code == IB_E_NETWORK)
					(*missing_offline)++;
				continue;
			}
		} else {
			xfer_fail(x, IB_E_SPEC, "%s: neither sha256 nor checksum_url", x->what);
			continue;
		}
		int r = ib_cas_lookup(&c, cas, it->digest, 1, NULL);
		if (r < 0) {
			xfer_fail_ctx(x, &c);
			continue;
		}
		if (r > 0) {
			xfer_done_cached(x, cas, 1);
			continue;
		}
		if (o->offline && !ib_url_is_file(x->url)) {
			xfer_fail(x, IB_E_NETWORK, "%s (%s, sha256:%.12s)", x->what, it->url,
			          it->digest);
			(*missing_offline)++;
			continue;
		}
		x->part = xasprintf("%s/tmp/%s.part", cas->root, it->digest);
		x->limit = it->size ? it->size : o->max_size;
		x->total = it->size;
		x->state = X_QUEUED;
	}
}

int ib_fetch_all(struct ib_ctx *ctx, const struct ib_cas *cas, const struct ib_fetch_opts *o,
                 struct ib_fetch_item *items, size_t n)
{
	ib_curl_init_once();
	struct ib_fetch_opts defaults;
	if (!o) {
		ib_fetch_opts_init(&defaults);
		o = &defaults;
	}
	int parallel = o->parallel > 0 ? o->parallel : 8;
	struct xfer *xs = xcalloc(n ? n : 1, sizeof(*xs));
	for (size_t i = 0; i < n; i++) {
		xs[i].it = &items[i];
		xs[i].what = items[i].what ? items[i].what : items[i].url ? items[i].url : "item";
		xs[i].fd = xs[i].lock_fd = -1;
		items[i].rc = 0;
		items[i].err[0] = '\0';
		items[i].cached = 0;
		items[i].digest[0] = '\0';
		free(items[i].path);
		items[i].path = NULL;
	}
	int missing_offline = 0;
	plan(ctx, cas, o, xs, n, &missing_offline);

	CURLM *m = curl_multi_init();
	if (!m)
		abort();
	int running = 0, interrupted = 0;
	double last_progress = 0;
	for (;;) {
		if (ib_interrupted) {
			interrupted = 1;
			break;
		}
		double now = ib_now(), wake = now + 0.1;
		int pending = 0;
		for (size_t i = 0; i < n; i++) {
			struct xfer *x = &xs[i];
			if (x->state == X_DONE)
				continue;
			pending++;
			if (x->state != X_QUEUED)
				continue;
			if (x->not_before > now || running >= parallel) {
				if (x->not_before > now && x->not_before < wake)
					wake = x->not_before;
				continue;
			}
			if (x->lock_fd < 0) {
				struct ib_ctx c;
				ib_ctx_init_child(&c, ctx, NULL);
				int r = ib_cas_trylock(&c, cas, x->it->digest, &x->lock_fd);
				if (r < 0) {
					xfer_fail_ctx(x, &c);
					continue;
				}
				if (r == 0) { /* another process is fetching it: look again soon */
					x->not_before = now + LOCK_POLL_S;
					continue;
				}
			}
			if (!x->prepared && xfer_prepare(ctx, x, cas))
				continue;
			if (xfer_start(m, x, o) == 0)
				running++;
		}
		if (!pending)
			break;
		if (o->progress && now - last_progress >= PROGRESS_EVERY) {
			report_progress(ctx, xs, n);
			last_progress = now;
		}
		if (!running) {
			sleep_s(wake - ib_now());
			continue;
		}
		int still = 0;
		curl_multi_perform(m, &still);
		CURLMsg *msg;
		int left, finished = 0;
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			struct xfer *x = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			CURLcode res = msg->data.result;
			running--;
			finished++;
			xfer_finished(ctx, m, x, res, o, cas);
		}
		/* A freed slot is filled at once, not after the next wake-up. */
		int ms = (int)((wake - ib_now()) * 1000);
		if (!finished && ms > 0)
			curl_multi_poll(m, NULL, 0, ms, NULL);
	}
	for (size_t i = 0; i < n; i++) {
		struct xfer *x = &xs[i];
		if (x->easy)
			xfer_detach(m, x);
		if (x->state != X_DONE) /* the part stays: the next run resumes it */
			xfer_fail(x, IB_E_INTERRUPTED, "%s: interrupted", x->what);
	}
	curl_multi_cleanup(m);
	if (o->progress && !interrupted)
		report_progress(ctx, xs, n);
	for (size_t i = 0; i < n; i++)
		xfer_release(&xs[i]);
	free(xs);

	if (interrupted)
		return ib_error(ctx, IB_E_INTERRUPTED, "interrupted while fetching");
	for (size_t i = 0; i < n; i++)
		if (items[i].rc < 0) {
			fail_message(ctx, items, n, missing_offline > 0 && o->offline);
			return ctx->err_code ? -(int)ctx->err_code : items[i].rc;
		}
	return 0;
}
