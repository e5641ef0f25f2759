/* check_sigv4.c: the SigV4 signer against every case of the AWS signing test suite.
 *
 * The suite is $IMGBUILD_SIGV4_SUITE, else ../shared/testdata/sigv4 beside the repository
 * this binary was built in (build/tests/check_sigv4 -> ../../..). Every directory holding a
 * request.txt is a case, so cases dropped in later run without code changes; finding none
 * is a failure.
 */
#include <dirent.h>
#include <libgen.h>
#include <limits.h>

#include "aws/sigv4.h"
#include "testutil.h"
#include "util/jsonr.h"

static char *suite_dir(void)
{
	const char *env = getenv("IMGBUILD_SIGV4_SUITE");
	if (env && *env)
		return ib_abspath(env);
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	ck_assert_int_gt(n, 0);
	exe[n] = '\0';
	/* <repo>/build/tests/check_sigv4 (or build-san/) */
	char *d = dirname(dirname(dirname(exe)));
	return xasprintf("%s/../shared/testdata/sigv4", d);
}

static char *slurp(const char *dir, const char *name, size_t *len)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	_cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
	char *data = NULL;
	size_t l = 0;
	if (ib_read_file(&ctx, p, 1 << 20, &data, &l) < 0)
		return NULL;
	if (len)
		*len = l;
	return data;
}

struct parsed {
	char *method, *target, *version;
	char *path, *query;
	struct strv names, values; /* header lines, folded lines joined with '\n' */
	struct strv raw_lines;     /* header lines as written */
	char *body;
	size_t body_len;
};

static void parsed_release(struct parsed *r)
{
	free(r->method);
	free(r->target);
	free(r->version);
	free(r->path);
	free(r->query);
	strv_release(&r->names);
	strv_release(&r->values);
	strv_release(&r->raw_lines);
	free(r->body);
}

/* "METHOD target HTTP/1.1" (the target may hold spaces), header lines (a line starting with
 * whitespace continues the previous one), an empty line, the body. */
static int parse_request(const char *text, size_t len, struct parsed *r)
{
	memset(r, 0, sizeof(*r));
	const char *end = text + len, *p = text;
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	if (!nl)
		nl = end;
	const char *sp1 = memchr(p, ' ', (size_t)(nl - p));
	const char *sp2 = nl;
	while (sp2 > p && sp2[-1] != ' ')
		sp2--;
	if (!sp1 || sp2 <= sp1 + 1)
		return -1;
	r->method = xstrndup(p, (size_t)(sp1 - p));
	r->target = xstrndup(sp1 + 1, (size_t)(sp2 - 1 - sp1 - 1));
	r->version = xstrndup(sp2, (size_t)(nl - sp2));
	const char *qm = strchr(r->target, '?');
	r->path = qm ? xstrndup(r->target, (size_t)(qm - r->target)) : xstrdup(r->target);
	r->query = qm ? xstrdup(qm + 1) : NULL;
	p = nl < end ? nl + 1 : end;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if (le == p) { /* blank line: the body follows */
			p = nl ? nl + 1 : end;
			r->body = xstrndup(p, (size_t)(end - p));
			r->body_len = (size_t)(end - p);
			return 0;
		}
		_cleanup_free_ char *line = xstrndup(p, (size_t)(le - p));
		strv_push(&r->raw_lines, line);
		if ((line[0] == ' ' || line[0] == '\t') && r->values.n > 0) {
			char *prev = r->values.v[r->values.n - 1];
			r->values.v[r->values.n - 1] = xasprintf("%s\n%s", prev, line);
			free(prev);
		} else {
			char *colon = strchr(line, ':');
			if (!colon)
				return -1;
			strv_push_take(&r->names, xstrndup(line, (size_t)(colon - line)));
			strv_push(&r->values, colon + 1);
		}
		p = nl ? nl + 1 : end;
	}
	r->body = xstrdup("");
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void split_sorted(const char *s, char sep, struct strv *out)
{
	const char *p = s;
	while (p && *p) {
		size_t n = strcspn(p, (char[]){sep, 0});
		strv_push_take(out, xstrndup(p, n));
		p += n;
		if (*p)
			p++;
	}
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(char *), cmp_str);
}

static int strv_equal(const struct strv *a, const struct strv *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (!streq(a->v[i], b->v[i]))
			return 0;
	return 1;
}

/* The signed request compared as content: the same request line (query parameters in any
 * order) and the same header lines (in any order), the same body. Which order a signer emits
 * its added headers in is presentation, not signing. */
static int same_signed_request(const char *want, size_t wl, const char *got, size_t gl)
{
	struct parsed a, b;
	int ok = parse_request(want, wl, &a) == 0 && parse_request(got, gl, &b) == 0;
	if (ok) {
		struct strv qa = {0}, qb = {0}, ha = {0}, hb = {0};
		split_sorted(a.query, '&', &qa);
		split_sorted(b.query, '&', &qb);
		for (size_t i = 0; i < a.raw_lines.n; i++)
			strv_push(&ha, a.raw_lines.v[i]);
		for (size_t i = 0; i < b.raw_lines.n; i++)
			strv_push(&hb, b.raw_lines.v[i]);
		if (ha.n > 1)
			qsort(ha.v, ha.n, sizeof(char *), cmp_str);
		if (hb.n > 1)
			qsort(hb.v, hb.n, sizeof(char *), cmp_str);
		ok = streq(a.method, b.method) && streq(a.path, b.path) &&
		     streq(a.version, b.version) && strv_equal(&qa, &qb) && strv_equal(&ha, &hb) &&
		     a.body_len == b.body_len && memcmp(a.body, b.body, a.body_len) == 0;
		strv_release(&qa);
		strv_release(&qb);
		strv_release(&ha);
		strv_release(&hb);
		parsed_release(&b);
	}
	parsed_release(&a);
	return ok;
}

/* Compare what the signer produced with the case's expected files; 1 on any mismatch. */
static int compare(const char *dir, const char *variant, const struct parsed *r,
                   const struct aws_sig_result *res, struct strbuf *why)
{
	int bad = 0, query = streq(variant, "query");
	/* The signed request as this signer would send it. */
	struct strbuf sreq = STRBUF_INIT;
	if (query)
		sb_addf(&sreq, "%s %s%s%s%s%s %s\n", r->method, r->path, "?",
		        r->query ? r->query : "", r->query ? "&" : "", res->query_add, r->version);
	else
		sb_addf(&sreq, "%s %s %s\n", r->method, r->target, r->version);
	for (size_t i = 0; i < r->raw_lines.n; i++)
		sb_addf(&sreq, "%s\n", r->raw_lines.v[i]);
	for (size_t i = 0; i < res->n_headers; i++)
		sb_addf(&sreq, "%s:%s\n", res->headers[i].name, res->headers[i].value);
	sb_addc(&sreq, '\n');
	sb_add(&sreq, r->body, r->body_len);

	const struct {
		const char *file, *got;
	} files[] = {
	        {"canonical-request.txt", res->canonical_request},
	        {"string-to-sign.txt", res->string_to_sign},
	        {"signature.txt", res->signature},
	};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		_cleanup_free_ char *name = xasprintf("%s-%s", variant, files[i].file);
		size_t wl = 0;
		_cleanup_free_ char *want = slurp(dir, name, &wl);
		if (!want) {
			sb_addf(why, "  %s: missing %s\n", dir, name);
			bad = 1;
		} else if (wl != strlen(files[i].got) || memcmp(want, files[i].got, wl) != 0) {
			sb_addf(why, "  %s: %s differs:\n--- expected\n%s\n--- got\n%s\n", dir,
			        name, want, files[i].got);
			bad = 1;
		}
	}
	_cleanup_free_ char *sname = xasprintf("%s-signed-request.txt", variant);
	size_t swl = 0;
	_cleanup_free_ char *swant = slurp(dir, sname, &swl);
	if (!swant || !same_signed_request(swant, swl, sreq.buf, sreq.len)) {
		sb_addf(why, "  %s: %s differs:\n--- expected\n%s\n--- got\n%s\n", dir, sname,
		        swant ? swant : "(missing)", sb_str(&sreq));
		bad = 1;
	}
	sb_release(&sreq);
	return bad;
}

/* Run one variant ("header" or "query") of a case; 0 when every file matched, else the
 * mismatches are described in why. */
static int run_variant(const char *dir, const char *variant, struct strbuf *why)
{
	size_t rl = 0, cl = 0;
	_cleanup_free_ char *req = slurp(dir, "request.txt", &rl);
	_cleanup_free_ char *ctxj = slurp(dir, "context.json", &cl);
	if (!req || !ctxj) {
		sb_addf(why, "  %s: cannot read request.txt or context.json\n", dir);
		return -1;
	}
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	_cleanup_jsonr_ struct jsonr *cj = NULL;
	if (jsonr_parse(&ctx, IB_E_SPEC, "context.json", ctxj, cl, &cj) < 0) {
		sb_addf(why, "  %s: %s\n", dir, ctx.err);
		return -1;
	}
	const struct jsonr *cr = jsonr_get_type(cj, "credentials", JSONR_OBJECT);
	const struct jsonr *b;
	struct aws_sig_params p = {
	        .creds = {jsonr_get_str(cr, "access_key_id"),
	                  jsonr_get_str(cr, "secret_access_key"), jsonr_get_str(cr, "token")},
	        .region = jsonr_get_str(cj, "region"),
	        .service = jsonr_get_str(cj, "service"),
	};
	const struct jsonr *exp = jsonr_get_type(cj, "expiration_in_seconds", JSONR_NUMBER);
	p.expires = exp ? (long)exp->integer : 3600;
	if ((b = jsonr_get_type(cj, "normalize", JSONR_BOOL)) && !b->boolean)
		p.flags |= AWS_SIG_NO_NORMALIZE;
	if ((b = jsonr_get_type(cj, "omit_session_token", JSONR_BOOL)) && b->boolean)
		p.flags |= AWS_SIG_OMIT_TOKEN;
	int query = streq(variant, "query");
	if (query)
		p.flags |= AWS_SIG_QUERY;
	else if ((b = jsonr_get_type(cj, "sign_body", JSONR_BOOL)) && b->boolean)
		p.flags |= AWS_SIG_BODY_HEADER;
	const char *ts = jsonr_get_str(cj, "timestamp");
	struct tm tm = {0};
	if (!p.creds.access_key || !p.creds.secret_key || !p.region || !p.service || !ts ||
	    !strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
		sb_addf(why, "  %s: context.json lacks credentials, region, service or timestamp\n",
		        dir);
		return -1;
	}
	p.when = timegm(&tm);

	struct parsed r;
	if (parse_request(req, rl, &r) < 0) {
		sb_addf(why, "  %s: cannot parse request.txt\n", dir);
		parsed_release(&r);
		return -1;
	}
	struct aws_hdr *h = xcalloc(r.names.n + 1, sizeof(*h));
	for (size_t i = 0; i < r.names.n; i++)
		h[i] = (struct aws_hdr){r.names.v[i], r.values.v[i]};
	struct aws_sig_request sr = {r.method,  r.path, r.query,    h,
	                             r.names.n, r.body, r.body_len, NULL};
	struct aws_sig_result res;
	int bad = 0;
	if (aws_sigv4_sign(&sr, &p, &res) < 0) {
		sb_addf(why, "  %s: the signer refused the request\n", dir);
		bad = 1;
	} else {
		bad = compare(dir, variant, &r, &res, why);
		aws_sig_result_release(&res);
	}
	free(h);
	parsed_release(&r);
	return bad ? -1 : 0;
}
START_TEST(test_suite_cases)
{
	_cleanup_free_ char *dir = suite_dir();
	DIR *d = opendir(dir);
	ck_assert_msg(d != NULL, "cannot open the SigV4 suite %s (set IMGBUILD_SIGV4_SUITE)", dir);
	struct strv cases = {0};
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *req = xasprintf("%s/%s/request.txt", dir, de->d_name);
		if (ib_exists(req))
			strv_push_take(&cases, xasprintf("%s/%s", dir, de->d_name));
	}
	closedir(d);
	strv_sort(&cases);
	ck_assert_msg(cases.n > 0, "no SigV4 test case (a directory with request.txt) in %s", dir);
	struct strbuf why = STRBUF_INIT;
	size_t failed = 0;
	for (size_t i = 0; i < cases.n; i++) {
		int h = run_variant(cases.v[i], "header", &why);
		int q = run_variant(cases.v[i], "query", &why);
		if (h < 0 || q < 0)
			failed++;
	}
	printf("sigv4: %zu cases x {header, query} from %s, %zu failed\n", cases.n, dir, failed);
	ck_assert_msg(failed == 0, "%zu of %zu SigV4 cases failed:\n%s", failed, cases.n,
	              sb_str(&why));
	sb_release(&why);
	strv_release(&cases);
}
END_TEST

START_TEST(test_uri_encode)
{
	struct strbuf sb = STRBUF_INIT;
	aws_uri_encode(&sb, "a b/c~d+e=%\xe1\x88\xb4", 14, 0);
	ck_assert_str_eq(sb_str(&sb), "a%20b%2Fc~d%2Be%3D%25%E1%88%B4");
	sb_reset(&sb);
	aws_uri_encode(&sb, "/snapshots/snap-1/blocks/7", 26, 1);
	ck_assert_str_eq(sb_str(&sb), "/snapshots/snap-1/blocks/7");
	sb_release(&sb);
	_cleanup_free_ char *d = aws_uri_decode("a%2Fb%zz%4", 10);
	ck_assert_str_eq(d, "a/b%zz%4");
	_cleanup_free_ char *b64 = aws_base64("hello", 5);
	ck_assert_str_eq(b64, "aGVsbG8=");
}
END_TEST

/* An EBS PutSnapshotBlock as the uploader signs it: unsigned payload, checksum headers
 * signed, the session token signed. Checked against botocore's SigV4Auth (same inputs). */
START_TEST(test_ebs_put_block)
{
	struct aws_hdr h[] = {
	        {"Host", "ebs.eu-west-1.amazonaws.com"},
	        {"x-amz-Checksum", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="},
	        {"x-amz-Checksum-Algorithm", "SHA256"},
	        {"x-amz-Data-Length", "524288"},
	        {"X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD"},
	};
	struct aws_sig_request r = {"PUT",
	                            "/snapshots/snap-0123/blocks/5",
	                            NULL,
	                            h,
	                            ARRAY_SIZE(h),
	                            NULL,
	                            0,
	                            "UNSIGNED-PAYLOAD"};
	struct aws_sig_params p = {
	        {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "tok"},
	        "eu-west-1",
	        "ebs",
	        1440938160,
	        0,
	        0};
	struct aws_sig_result res;
	ck_assert_int_eq(aws_sigv4_sign(&r, &p, &res), 0);
	ck_assert_str_eq(res.canonical_request,
	                 "PUT\n/snapshots/snap-0123/blocks/5\n\n"
	                 "host:ebs.eu-west-1.amazonaws.com\n"
	                 "x-amz-checksum:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
	                 "x-amz-checksum-algorithm:SHA256\n"
	                 "x-amz-content-sha256:UNSIGNED-PAYLOAD\n"
	                 "x-amz-data-length:524288\n"
	                 "x-amz-date:20150830T123600Z\n"
	                 "x-amz-security-token:tok\n\n"
	                 "host;x-amz-checksum;x-amz-checksum-algorithm;x-amz-content-sha256;"
	                 "x-amz-data-length;x-amz-date;x-amz-security-token\n"
	                 "UNSIGNED-PAYLOAD");
	ck_assert_uint_eq(res.n_headers, 3);
	ck_assert_str_eq(res.headers[0].name, "X-Amz-Security-Token");
	ck_assert_str_eq(res.headers[1].name, "X-Amz-Date");
	ck_assert_str_eq(res.headers[2].name, "Authorization");
	ck_assert_ptr_nonnull(
	        strstr(res.headers[2].value,
	               "Credential=AKIDEXAMPLE/20150830/eu-west-1/ebs/aws4_request, "));
	aws_sig_result_release(&res);
	/* No Host header: refused. */
	r.headers = h + 1;
	r.n_headers = ARRAY_SIZE(h) - 1;
	ck_assert_int_eq(aws_sigv4_sign(&r, &p, &res), -1);
}
END_TEST

static Suite *sigv4_suite(void)
{
	Suite *s = suite_create("sigv4");
	TU_CASE(s, "suite", test_suite_cases);
	TU_CASE(s, "uri", test_uri_encode);
	TU_CASE(s, "ebs", test_ebs_put_block);
	return s;
}

TU_MAIN(sigv4_suite)
