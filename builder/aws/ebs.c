/* ebs.c: StartSnapshot, concurrent PutSnapshotBlock from a fixed buffer pool, CompleteSnapshot. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "ebs.h"
#include "ec2.h"
#include "fetch/http_int.h"
#include "http.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/jsonr.h"

#define GIB ((uint64_t)1 << 30)

void aws_block_digest(const void *data, size_t len, unsigned char digest[32], char b64[45])
{
	unsigned int n = 0;
	if (!EVP_Digest(data, len, digest, &n, EVP_sha256(), NULL))
		abort();
	EVP_EncodeBlock((unsigned char *)b64, digest, 32);
}

void aws_linear_init(struct aws_linear *l)
{
	l->md = EVP_MD_CTX_new();
	if (!l->md || !EVP_DigestInit_ex(l->md, EVP_sha256(), NULL))
		abort();
}

void aws_linear_add(struct aws_linear *l, const unsigned char digest[32])
{
	EVP_DigestUpdate(l->md, digest, 32);
}

void aws_linear_final(struct aws_linear *l, char out[45])
{
	unsigned char md[32];
	unsigned int n = 0;
	EVP_DigestFinal_ex(l->md, md, &n);
	EVP_EncodeBlock((unsigned char *)out, md, 32);
	EVP_MD_CTX_free(l->md);
	l->md = NULL;
}

void aws_upload_result_release(struct aws_upload_result *r)
{
	free(r->snapshot_id);
	r->snapshot_id = NULL;
}

/* ---- StartSnapshot and CompleteSnapshot ---- */

static int start_snapshot(struct ib_ctx *ctx, struct aws_client *c, const struct aws_upload_opts *o,
                          uint64_t gib, char **ret_id)
{
	uint8_t b[16];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot make a client token");
	char token[37];
	ib_uuid_format(b, token);
	struct strbuf sb = STRBUF_INIT;
	struct json j;
	json_init(&j, &sb, 0);
	json_obj_begin(&j, NULL);
	json_int(&j, "VolumeSize", (long long)gib);
	if (o->description)
		json_str(&j, "Description", o->description);
	/* Retries of this call within this run share the token: one snapshot, not several. */
	json_str(&j, "ClientToken", token);
	json_int(&j, "Timeout", o->timeout_minutes > 0 ? o->timeout_minutes : 60);
	if (o->n_tags) {
		json_arr_begin(&j, "Tags");
		for (size_t i = 0; i < o->n_tags; i++) {
			json_obj_begin(&j, NULL);
			json_str(&j, "Key", o->tags[2 * i]);
			json_str(&j, "Value", o->tags[2 * i + 1]);
			json_obj_end(&j);
		}
		json_arr_end(&j);
	}
	json_obj_end(&j);
	struct aws_call call = {
	        .service = "ebs",
	        .method = "POST",
	        .path = "/snapshots",
	        .content_type = "application/json",
	        .body = sb.buf,
	        .body_len = sb.len,
	        .what = "StartSnapshot",
	};
	struct aws_resp resp;
	int r = aws_call(ctx, c, &call, &resp);
	sb_release(&sb);
	if (r < 0)
		return r;
	if (c->dry_run) {
		aws_resp_release(&resp);
		*ret_id = xstrdup("snap-dry-run");
		return 0;
	}
	_cleanup_jsonr_ struct jsonr *js = NULL;
	r = jsonr_parse(ctx, IB_E_NETWORK, "StartSnapshot answer", resp.body, resp.len, &js);
	aws_resp_release(&resp);
	if (r < 0)
		return r;
	const char *id = jsonr_get_str(js, "SnapshotId");
	if (!id || !startswith(id, "snap-"))
		return ib_error(ctx, IB_E_NETWORK, "StartSnapshot answer has no SnapshotId");
	const struct jsonr *bs = jsonr_get_type(js, "BlockSize", JSONR_NUMBER);
	/* PutSnapshotBlock takes 524288-byte blocks only; an endpoint that reports another size
	 * (moto says 512) still gets those, and the block index counts them. */
	if (bs && bs->is_int && bs->integer != AWS_EBS_BLOCK)
		ib_log(ctx, IB_LOG_DEBUG, "StartSnapshot reports BlockSize %lld; using %u",
		       (long long)bs->integer, AWS_EBS_BLOCK);
	*ret_id = xstrdup(id);
	return 0;
}

static int complete_snapshot(struct ib_ctx *ctx, struct aws_client *c, const char *id,
                             uint64_t changed, const char *checksum)
{
	char count[32];
	snprintf(count, sizeof(count), "%llu", (unsigned long long)changed);
	struct aws_hdr h[] = {
	        {"x-amz-ChangedBlocksCount", count},
	        {"x-amz-Checksum", checksum},
	        {"x-amz-Checksum-Algorithm", "SHA256"},
	        {"x-amz-Checksum-Aggregation-Method", "LINEAR"},
	};
	_cleanup_free_ char *path = xasprintf("/snapshots/completion/%s", id);
	struct aws_call call = {
	        .service = "ebs",
	        .method = "POST",
	        .path = path,
	        .headers = h,
	        .n_headers = ARRAY_SIZE(h),
	        .what = "CompleteSnapshot",
	};
	struct aws_resp resp;
	int r = aws_call(ctx, c, &call, &resp);
	if (r < 0)
		return r;
	if (!c->dry_run) {
		struct jsonr *js = NULL;
		if (jsonr_parse_ex(resp.body, resp.len, NULL, &js, &(struct jsonr_error){0}) == 0) {
			const char *st = jsonr_get_str(js, "Status");
			if (st && streq(st, "error"))
				r = ib_error(ctx, IB_E_NETWORK,
				             "CompleteSnapshot: snapshot %s is in state error", id);
		}
		jsonr_free(js);
	}
	aws_resp_release(&resp);
	return r;
}

/* ---- the block pump ---- */

enum slot_state { SLOT_FREE, SLOT_WAITING, SLOT_ACTIVE };

struct slot {
	enum slot_state state;
	unsigned char *buf;
	uint64_t index;
	int attempt;
	double start_at;
	CURL *easy;
	struct aws_prepared prep;
	struct ib_membuf resp;
	char b64[45];
	char errbuf[CURL_ERROR_SIZE];
};

struct pump {
	struct ib_ctx *ctx;
	struct aws_client *c;
	const struct aws_upload_opts *o;
	const char *snap;
	int fd;
	uint64_t size, total, next, done, skipped;
	double started;
	CURLM *multi;
	struct slot *slots;
	int n;
	struct aws_linear linear;
	unsigned long retries;
};

/* Is block i wholly inside a hole of the file (never written)? */
static int block_is_hole(struct pump *p, uint64_t i)
{
	off_t start = (off_t)(i * AWS_EBS_BLOCK);
	off_t data = lseek(p->fd, start, SEEK_DATA);
	if (data < 0)
		return errno == ENXIO; /* no data from here to the end */
	uint64_t end = (i + 1) * AWS_EBS_BLOCK;
	if (end > p->size)
		end = p->size;
	return (uint64_t)data >= end;
}

static int read_block(struct pump *p, struct slot *s, uint64_t i)
{
	uint64_t off = i * AWS_EBS_BLOCK;
	size_t want = p->size - off < AWS_EBS_BLOCK ? (size_t)(p->size - off) : AWS_EBS_BLOCK;
	size_t got = 0;
	while (got < want) {
		ssize_t r = pread(p->fd, s->buf + got, want - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return ib_error_errno(p->ctx, IB_E_IO, errno,
			                      "cannot read %s at offset %llu", p->o->path,
			                      (unsigned long long)(off + got));
		if (r == 0)
			return ib_error(p->ctx, IB_E_IO, "%s shrank while being uploaded",
			                p->o->path);
		got += (size_t)r;
	}
	/* The last block is zero-padded to the full block size. */
	memset(s->buf + want, 0, AWS_EBS_BLOCK - want);
	unsigned char digest[32];
	aws_block_digest(s->buf, AWS_EBS_BLOCK, digest, s->b64);
	/* Blocks are read in ascending order, so the aggregate is built as they are read. */
	aws_linear_add(&p->linear, digest);
	s->index = i;
	s->attempt = 0;
	return 0;
}

static int slot_start(struct pump *p, struct slot *s)
{
	char path[96], what[64], len[16];
	snprintf(path, sizeof(path), "/snapshots/%s/blocks/%llu", p->snap,
	         (unsigned long long)s->index);
	snprintf(what, sizeof(what), "PutSnapshotBlock %llu", (unsigned long long)s->index);
	snprintf(len, sizeof(len), "%u", AWS_EBS_BLOCK);
	struct aws_hdr h[] = {
	        {"x-amz-Data-Length", len},
	        {"x-amz-Checksum", s->b64},
	        {"x-amz-Checksum-Algorithm", "SHA256"},
	        /* The body is covered by the signed x-amz-Checksum. */
	        {"X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD"},
	};
	struct aws_call call = {
	        .service = "ebs",
	        .method = "PUT",
	        .path = path,
	        .headers = h,
	        .n_headers = ARRAY_SIZE(h),
	        .content_type = "application/octet-stream",
	        .body = s->buf,
	        .body_len = AWS_EBS_BLOCK,
	        .payload_hash = "UNSIGNED-PAYLOAD",
	        .what = what,
	};
	aws_prepared_release(&s->prep);
	int r = aws_prepare(p->ctx, p->c, &call, &s->prep);
	if (r < 0)
		return r;
	s->attempt++;
	if (p->c->dry_run) {
		s->state = SLOT_FREE;
		p->done++;
		return 0;
	}
	if (!s->easy && !(s->easy = curl_easy_init()))
		abort();
	curl_easy_reset(s->easy);
	aws_http_setup(s->easy, p->c->connect_timeout_ms,
	               p->o->block_timeout_ms > 0 ? p->o->block_timeout_ms : 30000, s->errbuf);
	sb_reset(&s->resp.body);
	sb_reset(&s->resp.headers);
	s->resp.max = 64 * 1024;
	s->resp.too_big = 0;
	curl_easy_setopt(s->easy, CURLOPT_URL, s->prep.url);
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->prep.headers);
	curl_easy_setopt(s->easy, CURLOPT_CUSTOMREQUEST, "PUT");
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)AWS_EBS_BLOCK);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->buf);
	curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, ib_mem_write);
	curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, &s->resp);
	curl_easy_setopt(s->easy, CURLOPT_HEADERFUNCTION, ib_mem_header);
	curl_easy_setopt(s->easy, CURLOPT_HEADERDATA, &s->resp);
	curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
	p->c->requests++;
	if (curl_multi_add_handle(p->multi, s->easy) != CURLM_OK)
		return ib_error(p->ctx, IB_E_LIB, "cannot add a transfer to the curl multi handle");
	s->state = SLOT_ACTIVE;
	return 0;
}

/* Fill every free slot with the next block to upload. */
static int fill(struct pump *p)
{
	for (int k = 0; k < p->n; k++) {
		struct slot *s = &p->slots[k];
		if (s->state != SLOT_FREE)
			continue;
		while (p->o->skip_holes && p->next < p->total && block_is_hole(p, p->next)) {
			p->skipped++;
			p->next++;
		}
		if (p->next >= p->total)
			return 0;
		int r = read_block(p, s, p->next++);
		if (r == 0)
			r = slot_start(p, s);
		if (r < 0)
			return r;
	}
	return 0;
}

static int finished(struct pump *p, struct slot *s, CURLcode res)
{
	long status = 0;
	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(p->multi, s->easy);
	char what[64];
	snprintf(what, sizeof(what), "PutSnapshotBlock %llu", (unsigned long long)s->index);
	/* Just after StartSnapshot the new snapshot may not be visible everywhere yet. */
	struct aws_call call = {
	        .what = what,
	        .retry_not_found = ib_now() - p->started <
	                           (p->o->not_found_grace_s > 0 ? p->o->not_found_grace_s : 120)};
	struct aws_resp out = {0};
	char why[512];
	enum aws_verdict v =
	        aws_judge(&call, res, status, sb_str(&s->resp.headers), sb_str(&s->resp.body),
	                  s->resp.body.len, &out, why, sizeof(why));
	if (res != CURLE_OK && s->errbuf[0])
		ib_curl_describe(res, 0, s->errbuf, why, sizeof(why));
	int throttled = aws_is_throttle(out.code);
	aws_resp_release(&out);
	int max = p->o->max_block_attempts > 0 ? p->o->max_block_attempts : 10;
	if (v == AWS_DONE) {
		s->state = SLOT_FREE;
		p->done++;
		ib_progress(p->ctx, "upload", p->done, p->total - p->skipped);
		return 0;
	}
	if (v == AWS_FAILED || s->attempt >= max)
		return ib_error(p->ctx, IB_E_NETWORK, "%s of snapshot %s: %s%s", what, p->snap, why,
		                v == AWS_RETRY ? " (after retries)" : "");
	long d = aws_backoff_ms(p->c, s->attempt, throttled);
	ib_log(p->ctx, IB_LOG_DEBUG, "%s: %s; retrying in %ld ms", what, why, d);
	p->retries++;
	p->c->retries++;
	s->state = SLOT_WAITING;
	s->start_at = ib_now() + (double)d / 1000;
	return 0;
}

static int pump_run(struct pump *p)
{
	int r = 0;
	while (r == 0) {
		if (ib_interrupted)
			return ib_error(p->ctx, IB_E_INTERRUPTED, "interrupted while uploading %s",
			                p->o->path);
		if ((r = fill(p)) < 0)
			break;
		double now = ib_now(), wake = now + 0.1;
		int busy = 0;
		for (int k = 0; k < p->n && r == 0; k++) {
			struct slot *s = &p->slots[k];
			if (s->state == SLOT_WAITING && s->start_at <= now)
				r = slot_start(p, s);
			if (s->state == SLOT_WAITING && s->start_at < wake)
				wake = s->start_at;
			busy |= s->state != SLOT_FREE;
		}
		if (r < 0)
			break;
		if (!busy && p->next >= p->total)
			break;
		int running = 0;
		if (curl_multi_perform(p->multi, &running) != CURLM_OK)
			return ib_error(p->ctx, IB_E_LIB, "curl_multi_perform failed");
		CURLMsg *m;
		int left;
		while (r == 0 && (m = curl_multi_info_read(p->multi, &left))) {
			if (m->msg != CURLMSG_DONE)
				continue;
			struct slot *s = NULL;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			r = finished(p, s, m->data.result);
		}
		if (r < 0)
			break;
		long ms = (long)((wake - ib_now()) * 1000);
		if (ms < 0)
			ms = 0;
		if (running > 0 || ms > 0)
			curl_multi_poll(p->multi, NULL, 0, (int)(ms > 100 ? 100 : ms), NULL);
	}
	return r;
}

static void pump_release(struct pump *p)
{
	for (int k = 0; k < p->n; k++) {
		struct slot *s = &p->slots[k];
		if (s->easy) {
			if (s->state == SLOT_ACTIVE)
				curl_multi_remove_handle(p->multi, s->easy);
			curl_easy_cleanup(s->easy);
		}
		aws_prepared_release(&s->prep);
		sb_release(&s->resp.body);
		sb_release(&s->resp.headers);
		free(s->buf);
	}
	free(p->slots);
	if (p->multi)
		curl_multi_cleanup(p->multi);
	if (p->linear.md)
		EVP_MD_CTX_free(p->linear.md);
}

int aws_ebs_upload(struct ib_ctx *ctx, struct aws_client *c, const struct aws_upload_opts *o,
                   struct aws_upload_result *ret)
{
	memset(ret, 0, sizeof(*ret));
	ib_curl_init_once();
	_cleanup_close_ int fd = open(o->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot open %s", o->path);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return ib_error(ctx, IB_E_IO, "%s is not a regular file", o->path);
	if (st.st_size == 0)
		return ib_error(ctx, IB_E_IO, "%s is empty", o->path);
	uint64_t size = (uint64_t)st.st_size;
	uint64_t gib = (size + GIB - 1) / GIB;
	if (gib > 65536)
		return ib_error(ctx, IB_E_IO, "%s is larger than the 64 TiB EBS allows", o->path);
	_cleanup_free_ char *snap = NULL;
	double t0 = ib_now();
	int r = start_snapshot(ctx, c, o, gib, &snap);
	if (r < 0)
		return r;

	struct pump p = {
	        .ctx = ctx,
	        .c = c,
	        .o = o,
	        .snap = snap,
	        .fd = fd,
	        .size = size,
	        .total = (size + AWS_EBS_BLOCK - 1) / AWS_EBS_BLOCK,
	        .started = ib_now(),
	};
	p.n = o->concurrency > 0 ? o->concurrency : 64;
	if ((uint64_t)p.n > p.total)
		p.n = (int)p.total;
	/* The whole memory of an upload: n block buffers, whatever the image size. */
	p.slots = xcalloc((size_t)p.n, sizeof(*p.slots));
	for (int k = 0; k < p.n; k++)
		p.slots[k].buf = xmalloc(AWS_EBS_BLOCK);
	if (!(p.multi = curl_multi_init()))
		abort();
	curl_multi_setopt(p.multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)p.n);
	aws_linear_init(&p.linear);
	r = pump_run(&p);
	if (r == 0) {
		aws_linear_final(&p.linear, ret->checksum);
		r = complete_snapshot(ctx, c, snap, p.done, ret->checksum);
	}
	ret->size = size;
	ret->volume_gib = gib;
	ret->blocks_total = p.total;
	ret->blocks_uploaded = p.done;
	ret->blocks_skipped = p.skipped;
	ret->retries = p.retries;
	ret->seconds = ib_now() - t0;
	pump_release(&p);
	if (r < 0) {
		/* Leave nothing behind: a half-written snapshot is of no use to anyone. */
		if (!c->dry_run) {
			struct ib_ctx sub;
			ib_ctx_init_child(&sub, ctx, ctx->label);
			if (aws_delete_snapshot(&sub, c, snap) < 0)
				ib_log(ctx, IB_LOG_WARN,
				       "cannot delete the unfinished snapshot %s: %s", snap,
				       sub.err);
		}
		return r;
	}
	ret->snapshot_id = TAKE_PTR(snap);
	return 0;
}
