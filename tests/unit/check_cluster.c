/* check_cluster.c: the cluster plan: token, CA (read back with OpenSSL and its CLI), plan
 * directory (modes, reuse, rotation), and the user-data templates it feeds. */
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <time.h>

#include "cluster/cluster.h"
#include "keypool.h"
#include "testutil.h"
#include "util/proc.h"

static char *slurp(const char *path)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	char *data = NULL;
	ck_assert_msg(ib_read_file(&ctx, path, 1 << 20, &data, NULL) == 0, "%s", ctx.err);
	return data;
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	ck_assert_msg(stat(path, &st) == 0, "no %s", path);
	return st.st_mode & 07777;
}

static char *b64(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
	return out;
}

/* ---- token and certificate key ---- */

static int token_shape(const char *t)
{
	if (strlen(t) != 23 || t[6] != '.')
		return 0;
	for (int i = 0; i < 23; i++)
		if (i != 6 && !((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9')))
			return 0;
	return 1;
}

static int cmp_token(const void *a, const void *b)
{
	return strcmp(a, b);
}

START_TEST(test_token)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	enum { N = 2000 };
	static char tokens[N][IB_TOKEN_LEN + 1];
	int seen[2][36] = {{0}};
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(ib_token_generate(&ctx, tokens[i]), 0);
		ck_assert_msg(token_shape(tokens[i]), "bad token '%s'", tokens[i]);
		ck_assert(ib_token_valid(tokens[i]));
		for (int k = 0; k < 23; k++) {
			if (k == 6)
				continue;
			char c = tokens[i][k];
			seen[k > 6][c <= '9' ? c - '0' : 10 + c - 'a']++;
		}
	}
	/* No repeats: sorted, equal tokens would be neighbours (2000 x 2000 comparisons took
	 * minutes under valgrind). */
	qsort(tokens, N, sizeof(tokens[0]), cmp_token);
	for (int i = 1; i < N; i++)
		ck_assert_msg(strcmp(tokens[i], tokens[i - 1]) != 0, "token repeated: %s",
		              tokens[i]);
	/* Every symbol shows up in both parts, near its fair share (6 x 2000 / 36 = 333 and
	 * 16 x 2000 / 36 = 889; a modulo bias towards the first four symbols would add 1.6%,
	 * far below what these bounds catch, but a broken alphabet is caught). */
	for (int s = 0; s < 36; s++) {
		ck_assert_msg(seen[0][s] > 200 && seen[0][s] < 480, "symbol %d: %d", s, seen[0][s]);
		ck_assert_msg(seen[1][s] > 700 && seen[1][s] < 1100, "symbol %d: %d", s,
		              seen[1][s]);
	}
	ck_assert(!ib_token_valid("abcdef0123456789abcdef"));
	ck_assert(!ib_token_valid("abcdef.0123456789abcdeF"));
	ck_assert(!ib_token_valid("abcdef-0123456789abcdef"));
	ck_assert(!ib_token_valid("abcdef.0123456789abcdef0"));
	ck_assert(ib_token_valid("abcdef.0123456789abcdef"));

	char k1[IB_CERT_KEY_LEN + 1], k2[IB_CERT_KEY_LEN + 1];
	ck_assert_int_eq(ib_cert_key_generate(&ctx, k1), 0);
	ck_assert_int_eq(ib_cert_key_generate(&ctx, k2), 0);
	ck_assert_int_eq(strlen(k1), 64);
	ck_assert(ib_cert_key_valid(k1) && ib_cert_key_valid(k2));
	ck_assert_str_ne(k1, k2);
	ck_assert(!ib_cert_key_valid("ABCDEF"));
}
END_TEST

/* ---- the CA ---- */

static X509 *read_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	ck_assert_ptr_nonnull(x);
	return x;
}

START_TEST(test_ca_fields)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_ca ca, ca2;
	time_t now = time(NULL);
	ck_assert_msg(ib_ca_generate(&ctx, now, &ca) == 0, "%s", ctx.err);
	ck_assert_msg(ib_ca_generate(&ctx, now, &ca2) == 0, "%s", ctx.err);
	ck_assert(startswith(ca.key_pem, "-----BEGIN PRIVATE KEY-----\n"));
	X509 *x = read_cert(ca.cert_pem);
	X509 *x2 = read_cert(ca2.cert_pem);

	ck_assert_int_eq(X509_get_version(x), 2);
	char subject[256], issuer[256];
	X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof(subject));
	X509_NAME_oneline(X509_get_issuer_name(x), issuer, sizeof(issuer));
	ck_assert_str_eq(subject, "/CN=kubernetes");
	ck_assert_str_eq(issuer, "/CN=kubernetes");

	EVP_PKEY *pub = X509_get0_pubkey(x);
	ck_assert_int_eq(EVP_PKEY_get_base_id(pub), EVP_PKEY_RSA);
	ck_assert_int_eq(EVP_PKEY_get_bits(pub), 2048);
	ck_assert_int_eq(X509_verify(x, pub), 1); /* self-signed */
	ck_assert_int_eq(X509_get_signature_nid(x), NID_sha256WithRSAEncryption);

	/* Serial: random, positive, different from one CA to the next. */
	BIGNUM *s1 = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	BIGNUM *s2 = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x2), NULL);
	ck_assert(!BN_is_negative(s1) && !BN_is_zero(s1));
	ck_assert_int_gt(BN_num_bits(s1), 64);
	ck_assert_int_ne(BN_cmp(s1, s2), 0);
	BN_free(s1);
	BN_free(s2);

	/* Valid from an hour ago, for ten years. */
	int days, secs;
	ASN1_TIME *at = ASN1_TIME_new();
	ASN1_TIME_set(at, now);
	ck_assert(ASN1_TIME_diff(&days, &secs, at, X509_get0_notBefore(x)));
	ck_assert_int_eq(days, 0);
	ck_assert_int_eq(secs, -3600);
	ck_assert(ASN1_TIME_diff(&days, &secs, at, X509_get0_notAfter(x)));
	ck_assert_int_eq(days, 3650);
	ck_assert_int_eq(secs, 0);
	ASN1_TIME_free(at);

	/* Extensions: basicConstraints critical CA:TRUE, keyUsage critical with exactly these
	 * bits, a subject key identifier. */
	int crit = -1;
	BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	ck_assert_ptr_nonnull(bc);
	ck_assert_int_eq(crit, 1);
	ck_assert(bc->ca);
	ck_assert_ptr_null(bc->pathlen);
	BASIC_CONSTRAINTS_free(bc);
	ASN1_BIT_STRING *ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
	ck_assert_ptr_nonnull(ku);
	ck_assert_int_eq(crit, 1);
	ASN1_BIT_STRING_free(ku);
	ck_assert_int_eq(X509_get_key_usage(x),
	                 KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT | KU_KEY_CERT_SIGN);
	ck_assert_ptr_nonnull(X509_get0_subject_key_id(x));
	ck_assert_int_eq(X509_get_ext_count(x), 3);
	ck_assert_int_eq(X509_check_ca(x), 1);

	X509_free(x);
	X509_free(x2);
	ib_ca_release(&ca);
	ib_ca_release(&ca2);
}
END_TEST

START_TEST(test_ca_hash)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_ca ca;
	ck_assert_int_eq(ib_ca_generate(&ctx, time(NULL), &ca), 0);
	tu_write("ca.crt", ca.cert_pem);
	/* kubeadm's documented way to compute --discovery-token-ca-cert-hash. */
	_cleanup_free_ char *cli =
	        tu_sh("openssl x509 -pubkey -noout -in ca.crt | "
	              "openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1");
	_cleanup_free_ char *want = xasprintf("sha256:%.64s", cli);
	ck_assert_str_eq(ca.hash, want);
	char again[IB_CA_HASH_LEN + 1];
	ck_assert_int_eq(ib_ca_hash(&ctx, ca.cert_pem, again), 0);
	ck_assert_str_eq(again, want);

	/* Loading checks that the key belongs to the certificate. */
	struct ib_ca loaded, other;
	ck_assert_int_eq(ib_ca_load(&ctx, "d", ca.cert_pem, ca.key_pem, &loaded), 0);
	ck_assert_str_eq(loaded.hash, want);
	ib_ca_release(&loaded);
	ck_assert_int_eq(ib_ca_generate(&ctx, time(NULL), &other), 0);
	ck_assert_int_eq(ib_ca_load(&ctx, "d", ca.cert_pem, other.key_pem, &loaded), -IB_E_SPEC);
	ck_assert_str_eq(ctx.err, "d/ca.key does not belong to d/ca.crt");
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_ca_load(&ctx, "d", "junk", ca.key_pem, &loaded), -IB_E_SPEC);
	ck_assert_str_eq(ctx.err, "d/ca.crt: not a PEM certificate");
	ib_ca_release(&ca);
	ib_ca_release(&other);
}
END_TEST

/* ---- addresses ---- */

START_TEST(test_net)
{
	static const char *const good[] = {"10.77.0.10", "0.0.0.0", "255.255.255.255", "1.2.3.4"};
	static const char *const bad[] = {
	        "10.77.0",  "10.77.0.256", "010.1.1.1", "1.2.3.4.5", "1.2.3.",     " 1.2.3.4",
	        "1.2.3.4 ", "a.b.c.d",     "1..2.3",    "",          "1.2.3.0004", "-1.2.3.4"};
	uint32_t a;
	char s[16];
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		ck_assert_msg(ib_ipv4_parse(good[i], &a) == 0, "%s", good[i]);
		ib_ipv4_format(a, s);
		ck_assert_str_eq(s, good[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		ck_assert_msg(ib_ipv4_parse(bad[i], &a) < 0, "'%s' accepted", bad[i]);

	struct ib_cidr c, d;
	char cs[19];
	ck_assert_int_eq(ib_cidr_parse("10.77.0.0/24", &c), 0);
	ib_cidr_format(&c, cs);
	ck_assert_str_eq(cs, "10.77.0.0/24");
	ck_assert_int_eq(ib_cidr_parse("10.77.0.5/24", &c), -2);
	ck_assert_int_eq(ib_cidr_parse("10.77.0.0/33", &c), -1);
	ck_assert_int_eq(ib_cidr_parse("10.77.0.0/", &c), -1);
	ck_assert_int_eq(ib_cidr_parse("10.77.0.0/024", &c), -1);
	ck_assert_int_eq(ib_cidr_parse("10.77.0.0", &c), -1);
	ck_assert_int_eq(ib_cidr_parse("0.0.0.0/0", &c), 0);
	ck_assert_int_eq(ib_cidr_parse("10.244.0.0/16", &c), 0);
	ck_assert_int_eq(ib_ipv4_parse("10.244.255.1", &a), 0);
	ck_assert(ib_cidr_contains(&c, a));
	ck_assert_int_eq(ib_ipv4_parse("10.245.0.1", &a), 0);
	ck_assert(!ib_cidr_contains(&c, a));
	ck_assert_int_eq(ib_cidr_parse("10.244.7.0/24", &d), 0);
	ck_assert(ib_cidr_overlap(&c, &d) && ib_cidr_overlap(&d, &c));
	ck_assert_int_eq(ib_cidr_parse("10.245.0.0/16", &d), 0);
	ck_assert(!ib_cidr_overlap(&c, &d));
}
END_TEST

/* ---- the plan directory ---- */

static struct ib_cluster_opts opts(void)
{
	return (struct ib_cluster_opts){
	        .name = "quode-sre",
	        .master_address = "10.77.0.10",
	        .workers = 2,
	        .network = "10.77.0.0/24",
	        .addons = "istio",
	};
}

/* The repository's own templates, rendered as cmd/seedcfg.c renders them. */
static char *render_template(const struct ib_cluster_plan *p, const struct ib_cluster_host *h)
{
	const char *top = getenv("IMGBUILD_SRCDIR");
	_cleanup_free_ char *path =
	        xasprintf("%s/cloud-init/%s.yaml", top && *top ? top : tu_oldcwd,
	                  h->worker ? "worker" : "master");
	_cleanup_free_ char *text = slurp(path);
	struct ib_cluster_vars v;
	ib_cluster_vars_init(&v, p, h);
	_cleanup_free_ char *iid = ib_cluster_instance_id(p, h);
	struct ib_tvar vars[5 + IB_CLUSTER_N_VARS] = {
	        {"role", h->worker ? "worker" : "master"},
	        {"hostname", h->name},
	        {"instance_id", iid},
	        {"project", p->name},
	        {"ssh_authorized_keys_entry", "# no key"},
	};
	for (size_t i = 0; i < v.n; i++)
		vars[5 + i] = v.v[i];
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	char *out = NULL;
	int r = ib_template_render(&ctx, path, text, vars, 5 + v.n, &out);
	ck_assert_msg(r == 0, "%s", ctx.err);
	ib_cluster_vars_release(&v);
	return out;
}

static int plan_ok(const char *dir, const struct ib_cluster_opts *o, struct ib_cluster_plan *p,
                   int write)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	int r = ib_cluster_plan_init(&ctx, dir, o, p);
	ck_assert_msg(r == 0, "plan: %s", ctx.err);
	if (write) {
		for (size_t i = 0; i < p->n_hosts; i++)
			p->hosts[i].user_data = render_template(p, &p->hosts[i]);
		r = ib_cluster_plan_write(&ctx, p, (time_t)1704067200);
		ck_assert_msg(r == 0, "write: %s", ctx.err);
	}
	return r;
}

START_TEST(test_plan_files)
{
	struct ib_cluster_plan p;
	struct ib_cluster_opts o = opts();
	plan_ok("out/cluster", &o, &p, 1);
	ck_assert_int_eq(p.reused, 0);
	ck_assert_int_eq(mode_of("out/cluster"), 0700);
	ck_assert_int_eq(mode_of("out/cluster/ca.crt"), 0644);
	static const char *const secret[] = {"ca.key",
	                                     "plan.json",
	                                     "master.user-data",
	                                     "master.seed.iso",
	                                     "worker-1.seed.iso",
	                                     "worker-1.user-data",
	                                     "worker-2.user-data",
	                                     "worker-2.seed.iso"};
	for (size_t i = 0; i < ARRAY_SIZE(secret); i++) {
		_cleanup_free_ char *f = xasprintf("out/cluster/%s", secret[i]);
		ck_assert_msg(mode_of(f) == 0600, "%s is %o", f, mode_of(f));
	}
	_cleanup_free_ char *ls = tu_sh("ls -A out/cluster | tr '\\n' ' '");
	ck_assert_str_eq(ls, "ca.crt ca.key master.seed.iso master.user-data plan.json "
	                     "worker-1.seed.iso worker-1.user-data worker-2.seed.iso "
	                     "worker-2.user-data ");

	/* What the files hold matches the plan in memory. */
	_cleanup_free_ char *crt = slurp("out/cluster/ca.crt");
	_cleanup_free_ char *key = slurp("out/cluster/ca.key");
	ck_assert_str_eq(crt, p.ca.cert_pem);
	ck_assert_str_eq(key, p.ca.key_pem);
	_cleanup_free_ char *json =
	        tu_sh("python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
	              "print(d[\"cluster_name\"], d[\"master_address\"], d[\"token\"], "
	              "d[\"certificate_key\"], d[\"ca_hash\"], d[\"pod_cidr\"], d[\"workers\"], "
	              "d[\"addons\"], [(h[\"name\"], h[\"address\"]) for h in d[\"hosts\"]])' "
	              "out/cluster/plan.json");
	_cleanup_free_ char *want = xasprintf(
	        "quode-sre 10.77.0.10 %s %s %s None 2 ['istio'] [('master', '10.77.0.10'), "
	        "('worker-1', '10.77.0.11'), ('worker-2', '10.77.0.12')]\n",
	        p.token, p.cert_key, p.ca.hash);
	ck_assert_str_eq(json, want);

	/* The master's user-data carries the CA certificate and key, the workers' neither the
	 * key nor the certificate key. */
	_cleanup_free_ char *m = slurp("out/cluster/master.user-data");
	_cleanup_free_ char *w = slurp("out/cluster/worker-1.user-data");
	_cleanup_free_ char *crt64 = b64(p.ca.cert_pem), *key64 = b64(p.ca.key_pem);
	ck_assert(startswith(m, "#cloud-config\n") && startswith(w, "#cloud-config\n"));
	ck_assert_ptr_nonnull(strstr(m, crt64));
	ck_assert_ptr_nonnull(strstr(m, key64));
	ck_assert_ptr_null(strstr(w, key64));
	ck_assert_ptr_null(strstr(w, crt64));
	ck_assert_ptr_nonnull(strstr(m, "- [/usr/local/sbin/imgbuild-k8s-master]\n"));
	ck_assert_ptr_nonnull(strstr(w, "- [/usr/local/sbin/imgbuild-k8s-join]\n"));

	/* cluster.env, decoded from the user-data and read by sh as the scripts read it. */
	_cleanup_free_ char *menv = tu_sh(
	        "sed -n '/cluster.env$/,/content:/s/^ *content: //p' out/cluster/master.user-data "
	        "| base64 -d > m.env && sh -c 'set -e; . ./m.env; echo \"$K8S_CLUSTER_NAME|"
	        "$K8S_MASTER_ADDRESS|$K8S_ADVERTISE_ADDRESS|$K8S_NODE_NAME|$K8S_TOKEN|$K8S_CA_HASH|"
	        "$K8S_CERT_KEY|${K8S_POD_CIDR-unset}|$K8S_ADDONS\"'");
	_cleanup_free_ char *mwant =
	        xasprintf("quode-sre|10.77.0.10|10.77.0.10|master|%s|%s|%s|unset|istio\n", p.token,
	                  p.ca.hash, p.cert_key);
	ck_assert_str_eq(menv, mwant);
	_cleanup_free_ char *wenv =
	        tu_sh("sed -n '/cluster.env$/,/content:/s/^ *content: //p' "
	              "out/cluster/worker-2.user-data "
	              "| base64 -d > w.env && sh -c 'set -e; . ./w.env; echo \"$K8S_MASTER_ADDRESS|"
	              "$K8S_NODE_NAME|$K8S_TOKEN|$K8S_CA_HASH|${K8S_CERT_KEY-none}|"
	              "${K8S_ADVERTISE_ADDRESS-none}\"'");
	_cleanup_free_ char *wwant =
	        xasprintf("10.77.0.10|worker-2|%s|%s|none|none\n", p.token, p.ca.hash);
	ck_assert_str_eq(wenv, wwant);
	_cleanup_free_ char *wfile = slurp("w.env");
	ck_assert_ptr_null(strstr(wfile, p.cert_key));
	ib_cluster_plan_release(&p);
}
END_TEST

START_TEST(test_plan_reuse_and_rotate)
{
	struct ib_cluster_plan a, b, c;
	struct ib_cluster_opts o = opts();
	plan_ok("cl", &o, &a, 1);
	_cleanup_free_ char *crt1 = slurp("cl/ca.crt");
	_cleanup_free_ char *ud1 = slurp("cl/master.user-data");

	/* Again, other options: the same CA, token and certificate key, new user-data. */
	o.workers = 1;
	o.pod_cidr = "10.200.0.0/16";
	plan_ok("cl", &o, &b, 1);
	ck_assert_int_eq(b.reused, 1);
	ck_assert_str_eq(b.token, a.token);
	ck_assert_str_eq(b.cert_key, a.cert_key);
	ck_assert_str_eq(b.ca.hash, a.ca.hash);
	ck_assert_str_eq(b.ca.key_pem, a.ca.key_pem);
	_cleanup_free_ char *crt2 = slurp("cl/ca.crt");
	ck_assert_str_eq(crt1, crt2);
	_cleanup_free_ char *ud2 = slurp("cl/master.user-data");
	ck_assert_str_ne(ud1, ud2);
	/* Fewer workers: the extra worker's files, and their secrets, are gone. */
	ck_assert(!ib_exists("cl/worker-2.user-data") && !ib_exists("cl/worker-2.seed.iso"));
	ck_assert(ib_exists("cl/worker-1.seed.iso"));

	/* --rotate: all new. */
	o.rotate = 1;
	plan_ok("cl", &o, &c, 1);
	ck_assert_int_eq(c.reused, 0);
	ck_assert_str_ne(c.token, a.token);
	ck_assert_str_ne(c.cert_key, a.cert_key);
	ck_assert_str_ne(c.ca.hash, a.ca.hash);
	_cleanup_free_ char *crt3 = slurp("cl/ca.crt");
	ck_assert_str_ne(crt1, crt3);
	_cleanup_free_ char *json = slurp("cl/plan.json");
	ck_assert_ptr_nonnull(strstr(json, c.token));
	ck_assert_ptr_null(strstr(json, a.token));
	_cleanup_free_ char *tmps = tu_sh("ls -A cl | grep -c tmp || true");
	ck_assert_str_eq(tmps, "0\n");
	ib_cluster_plan_release(&a);
	ib_cluster_plan_release(&b);
	ib_cluster_plan_release(&c);
}
END_TEST

/* A plan written before comes back with its options (seed --plan). */
START_TEST(test_plan_load)
{
	struct ib_cluster_plan a, b;
	struct ib_cluster_opts o = opts();
	o.addons = "istio, kiali";
	o.pod_cidr = "10.200.0.0/16";
	o.workers = 3;
	plan_ok("cl", &o, &a, 1);
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ck_assert_msg(ib_cluster_plan_load(&ctx, "cl", &b) == 0, "%s", ctx.err);
	ck_assert_str_eq(b.name, "quode-sre");
	ck_assert_str_eq(b.master_address, "10.77.0.10");
	ck_assert_str_eq(b.pod_cidr, "10.200.0.0/16");
	ck_assert_str_eq(b.addons, "istio kiali");
	ck_assert_int_eq(b.workers, 3);
	ck_assert_str_eq(b.token, a.token);
	ck_assert_str_eq(b.ca.hash, a.ca.hash);

	/* Any worker-N the network has room for, also beyond the plan. */
	struct ib_cluster_host h;
	ck_assert_int_eq(ib_cluster_host(&ctx, &b, "worker-7", 1, &h), 0);
	ck_assert_str_eq(h.address, "10.77.0.17");
	_cleanup_free_ char *net = ib_cluster_network_config(&b, &h);
	ck_assert_str_eq(h.mac, "52:54:0a:4d:00:11");
	ck_assert_str_eq(h.uplink_mac, "52:55:0a:4d:00:11");
	ck_assert_str_eq(net, "# network-config (version 2) for worker-7 of cluster quode-sre: a "
	                      "static address on\n"
	                      "# the private cluster network, no gateway; the way out by DHCP.\n"
	                      "version: 2\n"
	                      "ethernets:\n"
	                      "  cluster0:\n"
	                      "    match:\n"
	                      "      macaddress: \"52:54:0a:4d:00:11\"\n"
	                      "    set-name: cluster0\n"
	                      "    addresses: [10.77.0.17/24]\n"
	                      "  uplink0:\n"
	                      "    match:\n"
	                      "      macaddress: \"52:55:0a:4d:00:11\"\n"
	                      "    set-name: uplink0\n"
	                      "    dhcp4: true\n"
	                      "    optional: true\n");
	_cleanup_free_ char *meta = ib_cluster_meta_data(&b, &h);
	ck_assert_str_eq(meta, "instance-id: quode-sre-worker-7\nlocal-hostname: worker-7\n");
	ck_assert_int_eq(ib_cluster_host(&ctx, &b, "node-a", 1, &h), -IB_E_USAGE);
	ck_assert_str_eq(ctx.err, "worker 'node-a' has no address in the plan's network "
	                          "10.77.0.0/24: name it worker-N");

	ib_ctx_init(&ctx);
	struct ib_cluster_plan c;
	ck_assert_int_eq(ib_cluster_plan_load(&ctx, "nowhere", &c), -IB_E_USAGE);
	ck_assert_str_eq(ctx.err, "no cluster plan in 'nowhere': run 'imgbuild cluster plan "
	                          "--master-address ADDR' first");
	ib_cluster_plan_release(&a);
	ib_cluster_plan_release(&b);
}
END_TEST

/* A tooling host: the address after the workers', named in the nodes' cluster.env, its own
 * files; machines' sizes recorded and read back. */
START_TEST(test_plan_tooling)
{
	struct ib_cluster_plan a, b, c;
	struct ib_cluster_opts o = opts();
	int memory[IB_ROLE_N] = {0, 0, 4096}, cpus[IB_ROLE_N] = {2, 0, 0};
	o.tooling = 1;
	o.memory = memory;
	o.cpus = cpus;
	plan_ok("cl", &o, &a, 0);
	ck_assert_int_eq(a.has_tooling, 1);
	ck_assert_str_eq(a.tooling.name, "tooling");
	ck_assert_str_eq(a.tooling.address, "10.77.0.13");
	ck_assert_str_eq(a.tooling.mac, "52:54:0a:4d:00:0d");
	_cleanup_free_ char *nodes = ib_cluster_tooling_nodes(&a);
	ck_assert_str_eq(nodes, "master=10.77.0.10 worker-1=10.77.0.11 worker-2=10.77.0.12");
	for (size_t i = 0; i < a.n_hosts; i++) {
		_cleanup_free_ char *env = ib_cluster_env(&a, &a.hosts[i]);
		ck_assert_msg(strstr(env, "\nK8S_TOOLING_ADDRESS=10.77.0.13\n"), "%s", env);
		a.hosts[i].user_data = render_template(&a, &a.hosts[i]);
	}
	a.tooling.user_data = xstrdup("#cloud-config\nhostname: tooling\n");
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ck_assert_msg(ib_cluster_plan_write(&ctx, &a, (time_t)1704067200) == 0, "%s", ctx.err);
	ck_assert_int_eq(mode_of("cl/tooling.user-data"), 0600);
	ck_assert_int_eq(mode_of("cl/tooling.seed.iso"), 0600);
	_cleanup_free_ char *json = tu_sh(
	        "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); t=d[\"tooling\"]; "
	        "print(t[\"name\"], t[\"role\"], t[\"address\"], t[\"seed\"], "
	        "[(r, m[\"memory\"], m[\"cpus\"]) for r, m in d[\"machines\"].items()])' "
	        "cl/plan.json");
	ck_assert_str_eq(json, "tooling tooling 10.77.0.13 tooling.seed.iso [('master', 2048, 2), "
	                       "('worker', 1024, 1), ('tooling', 4096, 1)]\n");
	ck_assert_msg(ib_cluster_plan_load(&ctx, "cl", &b) == 0, "%s", ctx.err);
	ck_assert_int_eq(b.has_tooling, 1);
	ck_assert_str_eq(b.tooling.address, "10.77.0.13");
	ck_assert_int_eq(b.machines[IB_ROLE_TOOLING].memory, 4096);
	ck_assert_int_eq(b.machines[IB_ROLE_MASTER].cpus, 2);
	ck_assert_int_eq(b.machines[IB_ROLE_WORKER].memory, 1024);
	ib_cluster_plan_release(&b); /* its lock on cl */

	/* Without a tooling host: its files go, the nodes' K8S_TOOLING_ADDRESS is empty, the
	 * machines are the defaults. */
	o.tooling = 0;
	o.memory = o.cpus = NULL;
	plan_ok("cl", &o, &c, 1);
	ck_assert_int_eq(c.has_tooling, 0);
	ck_assert(!ib_exists("cl/tooling.user-data") && !ib_exists("cl/tooling.seed.iso"));
	_cleanup_free_ char *env = ib_cluster_env(&c, &c.hosts[1]);
	ck_assert_msg(strstr(env, "\nK8S_TOOLING_ADDRESS=\n"), "%s", env);
	ck_assert_int_eq(c.machines[IB_ROLE_TOOLING].memory, 3072);
	ck_assert_int_eq(c.machines[IB_ROLE_MASTER].memory, 2048);
	_cleanup_free_ char *tnull = tu_sh(
	        "python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"tooling\"])' "
	        "cl/plan.json");
	ck_assert_str_eq(tnull, "None\n");
	ib_cluster_plan_release(&a);
	ib_cluster_plan_release(&c);

	/* No room after the workers: an error before anything is written. */
	o = opts();
	o.tooling = 1;
	o.network = "10.77.0.0/28";
	o.workers = 4;
	ib_ctx_init(&ctx);
	struct ib_cluster_plan d;
	ck_assert_int_eq(ib_cluster_plan_init(&ctx, "none", &o, &d), -IB_E_USAGE);
	ck_assert_str_eq(ctx.err, "--network has no address left for the tooling host after 4 "
	                          "workers (a larger network, or --no-tooling)");
	ck_assert(!ib_exists("none"));
}
END_TEST

START_TEST(test_machine_parse)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	int m[IB_ROLE_N] = {0};
	ck_assert_int_eq(ib_machine_parse(&ctx, "--memory", "4096", 256, 1 << 20, m), 0);
	ck_assert(m[0] == 4096 && m[1] == 4096 && m[2] == 4096);
	ck_assert_int_eq(
	        ib_machine_parse(&ctx, "--memory", "tooling=3500,worker=512", 256, 1 << 20, m), 0);
	ck_assert(m[0] == 4096 && m[1] == 512 && m[2] == 3500);
	static const char *const bad[] = {
	        "",     "100",        "tooling=", "db=1024", "tooling=1024,", "master=1024x",
	        "+512", "tooling=-1", ","};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		ib_ctx_init(&ctx);
		int before[IB_ROLE_N];
		memcpy(before, m, sizeof(before));
		int r = ib_machine_parse(&ctx, "--memory", bad[i], 256, 1 << 20, m);
		ck_assert_msg(r == -IB_E_USAGE, "'%s' accepted", bad[i]);
		ck_assert_mem_eq(before, m, sizeof(before));
	}
	ib_ctx_init(&ctx);
	ib_machine_parse(&ctx, "--cpus", "master=0", 1, 64, m);
	ck_assert_str_eq(ctx.err,
	                 "bad value 'master=0' for --cpus: expected a number from 1 to 64, "
	                 "or ROLE=N items (master, worker, tooling) separated by commas");
}
END_TEST

static void plan_fails(const struct ib_cluster_opts *o, int code, const char *msg)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_cluster_plan p;
	ck_assert_int_eq(ib_cluster_plan_init(&ctx, "bad", o, &p), -code);
	ck_assert_str_eq(ctx.err, msg);
}

START_TEST(test_plan_errors)
{
	struct ib_cluster_opts o = opts();
	o.master_address = "10.77.0";
	plan_fails(&o, IB_E_USAGE,
	           "bad master address '10.77.0': expected an IPv4 address like "
	           "10.77.0.10");
	o = opts();
	o.master_address = "10.78.0.10";
	plan_fails(&o, IB_E_USAGE, "master address 10.78.0.10 is not in --network 10.77.0.0/24");
	o = opts();
	o.network = "10.77.0.0/33";
	plan_fails(&o, IB_E_USAGE,
	           "bad --network '10.77.0.0/33': expected an IPv4 network like 10.77.0.0/24");
	o = opts();
	o.workers = 65;
	plan_fails(&o, IB_E_USAGE, "bad number of workers 65: expected 1 to 64");
	o = opts();
	o.master_address = "10.77.0.11";
	plan_fails(&o, IB_E_USAGE,
	           "master address 10.77.0.11 is taken by a worker (workers get 10.77.0.11 to "
	           "10.77.0.12)");
	o = opts();
	o.pod_cidr = "10.77.0.0/16";
	plan_fails(&o, IB_E_USAGE, "--pod-cidr 10.77.0.0/16 overlaps --network 10.77.0.0/24");
	o = opts();
	o.addons = "istio,Kiali";
	plan_fails(&o, IB_E_USAGE, "bad add-on name 'Kiali' in --addons: use a-z, 0-9 and '-'");
	ck_assert(!ib_exists("bad"));

	/* Part of a plan is refused rather than half reused. */
	struct ib_cluster_plan p;
	o = opts();
	plan_ok("bad", &o, &p, 1);
	ib_cluster_plan_release(&p);
	ck_assert_int_eq(unlink("bad/plan.json"), 0);
	plan_fails(&o, IB_E_SPEC,
	           "'bad' holds part of a plan (ca.crt, ca.key and plan.json go together): add "
	           "--rotate to start over");
	o.rotate = 1;
	plan_ok("bad", &o, &p, 1);
	ib_cluster_plan_release(&p);
	/* A key from elsewhere. */
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_ca other;
	ck_assert_int_eq(ib_ca_generate(&ctx, time(NULL), &other), 0);
	tu_write("bad/ca.key", other.key_pem);
	ib_ca_release(&other);
	o.rotate = 0;
	plan_fails(&o, IB_E_SPEC, "bad/ca.key does not belong to bad/ca.crt");
}
END_TEST

static Suite *cluster_suite(void)
{
	Suite *s = suite_create("cluster");
	TU_CASE(s, "token", test_token);
	TU_CASE(s, "ca_fields", test_ca_fields);
	TU_CASE(s, "ca_hash", test_ca_hash);
	TU_CASE(s, "net", test_net);
	TU_CASE(s, "plan_files", test_plan_files);
	TU_CASE(s, "plan_reuse_and_rotate", test_plan_reuse_and_rotate);
	TU_CASE(s, "plan_load", test_plan_load);
	TU_CASE(s, "plan_errors", test_plan_errors);
	TU_CASE(s, "plan_tooling", test_plan_tooling);
	TU_CASE(s, "machine_parse", test_machine_parse);
	return s;
}

TU_MAIN(cluster_suite)
