/* check_jenkins.c: Jenkins plugin manifests, version order, and the closure check of a
 * layer's plugin directories. */
#include <archive.h>
#include <archive_entry.h>

#include "layer/jenkins.h"
#include "layer/layer.h"
#include "testutil.h"
#include "util/strbuf.h"

/* ---- version order ---- */

static int vcmp(const char *a, const char *b)
{
	int c = ib_jenkins_version_cmp(a, b);
	/* Antisymmetric, always. */
	ck_assert_int_eq(ib_jenkins_version_cmp(b, a), -c);
	return c;
}

START_TEST(test_version_order)
{
	ck_assert_int_eq(vcmp("5.2.2", "5.2.2"), 0);
	ck_assert_int_lt(vcmp("5.2.2", "5.10.0"), 0); /* numerically, not as text */
	ck_assert_int_lt(vcmp("5.2", "5.2.1"), 0);
	ck_assert_int_eq(vcmp("1.0", "1.0.0"), 0);
	ck_assert_int_eq(vcmp("1.07", "1.7"), 0);
	ck_assert_int_lt(vcmp("1.87", "1.88"), 0);
	ck_assert_int_lt(vcmp("99999999999999999999.1", "100000000000000000000.0"), 0);
	/* Incremental versions: the commit count decides, the hash after it never has to. */
	ck_assert_int_lt(vcmp("1810.v9b_c30a_249a_4c", "1811.va_1b_2c3d"), 0);
	ck_assert_int_gt(vcmp("1810.v9b_c30a_249a_4c", "1775.v810dc950b_514"), 0);
	ck_assert_int_eq(vcmp("1810.v9b_c30a_249a_4c", "1810.v9b_c30a_249a_4c"), 0);
	ck_assert_int_lt(vcmp("3894.3896.vca_2c931e7935", "3894.3897.v1"), 0);
	ck_assert_int_gt(vcmp("3894.3896.vca_2c931e7935", "3894.vca_2c931e7935"), 0);
	ck_assert_int_lt(vcmp("2.2198.v41dd8ef6dd56", "2.2205.vc9522a_4e5a_3e"), 0);
	ck_assert_int_lt(vcmp("2.17.0-379.v02de8ec9f64c", "2.17.0-380.v1"), 0);
	ck_assert_int_gt(vcmp("2.17.0-379.v02de8ec9f64c", "2.16.1-373.ve709c6871598"), 0);
	ck_assert_int_lt(vcmp("20240303-41.v94e11e6de726", "20250107-125.v28b_a_ffa_eb_f01"), 0);
	/* Pre-releases come before their release, other words after. */
	ck_assert_int_lt(vcmp("1.0-SNAPSHOT", "1.0"), 0);
	ck_assert_int_lt(vcmp("1.0-beta-1", "1.0"), 0);
	ck_assert_int_lt(vcmp("1.0-alpha", "1.0-beta"), 0);
	ck_assert_int_lt(vcmp("1.0-rc1", "1.0.1"), 0);
	ck_assert_int_lt(vcmp("1.0-beta", "1.0.1"), 0);
	ck_assert_int_gt(vcmp("1.0.1", "1.0-foo"), 0); /* a number is newer than a word */
	ck_assert_int_lt(vcmp("1.0", "1.0-foo"), 0);
	ck_assert_int_eq(vcmp("", ""), 0);
	ck_assert_int_lt(vcmp("", "1"), 0);
	ck_assert_int_eq(vcmp("1..2", "1.0.2"), 0);
}
END_TEST

/* ---- manifests ---- */

static struct ib_ctx ctx;

static int parse(const char *text, struct ib_jenkins_plugin *p)
{
	ib_ctx_init(&ctx);
	return ib_jenkins_manifest_parse(&ctx, "'x.jpi'", text, strlen(text), p);
}

static void parse_fails(const char *text, const char *msg)
{
	struct ib_jenkins_plugin p;
	int r = parse(text, &p);
	ck_assert_int_eq(r, -IB_E_SPEC);
	ck_assert_str_eq(ctx.err, msg);
	ck_assert_ptr_null(p.id);
	ib_jenkins_plugin_release(&p);
}

START_TEST(test_manifest_real_shape)
{
	/* As the maven-hpi-plugin writes it: CRLF, 72-byte lines, continuations that split
	 * ids and versions anywhere, a per-entry section after the main one. */
	const char *mf =
	        "Manifest-Version: 1.0\r\n"
	        "Created-By: Maven JAR Plugin 3.4.1\r\n"
	        "Build-Jdk-Spec: 17\r\n"
	        "Specification-Title: Pipeline: Groovy\r\n"
	        "Short-Name: workflow-cps\r\n"
	        "Long-Name: Pipeline: Groovy\r\n"
	        "Group-Id: org.jenkins-ci.plugins.workflow\r\n"
	        "Plugin-Version: 3894.3896.vca_2c931e7935\r\n"
	        "Hudson-Version: 2.440.3\r\n"
	        "Jenkins-Version: 2.440.3\r\n"
	        "Plugin-Dependencies: workflow-step-api:657.v03b_e8115821b_,workflow-api:1\r\n"
	        " 316.v33eb_726c50b_a_,workflow-support:896.v175a_a_9c5b_78f,script-secu\r\n"
	        " rity:1341.va_2819b_414686,scm-api:683.vb_16722fb_b_80b_,structs:338.v8\r\n"
	        " 48422169819,support-core:1356.vd0f980edfa_46;resolution:=optional\r\n"
	        "Plugin-Developers: \r\n"
	        "\r\n"
	        "Name: org/jenkinsci/plugins/workflow/cps/\r\n"
	        "Short-Name: not-this-one\r\n"
	        "\r\n";
	struct ib_jenkins_plugin p;
	int r = parse(mf, &p);
	ck_assert_msg(r == 0, "%s", ctx.err);
	ck_assert_str_eq(p.id, "workflow-cps");
	ck_assert_str_eq(p.version, "3894.3896.vca_2c931e7935");
	ck_assert_str_eq(p.jenkins_version, "2.440.3");
	ck_assert_uint_eq(p.n_deps, 7);
	ck_assert_str_eq(p.deps[1].id, "workflow-api");
	ck_assert_str_eq(p.deps[1].version, "1316.v33eb_726c50b_a_");
	ck_assert_str_eq(p.deps[3].id, "script-security");
	ck_assert_str_eq(p.deps[5].version, "338.v848422169819");
	ck_assert_str_eq(p.deps[6].id, "support-core");
	ck_assert_int_eq(p.deps[6].optional, 1);
	ck_assert_int_eq(p.deps[5].optional, 0);
	ib_jenkins_plugin_release(&p);

	/* LF and CR line ends, no dependencies, no Jenkins-Version, a byte order mark. */
	r = parse("\xef\xbb\xbfManifest-Version: 1.0\nShort-Name: structs\nPlugin-Ver\n"
	          "sion: 1\n",
	          &p);
	ck_assert_int_eq(r, -IB_E_SPEC); /* a header name cannot be continued */
	r = parse("\xef\xbb\xbfManifest-Version: 1.0\nShort-Name: structs\rPlugin-Version: 3\n"
	          " 38.v1\n",
	          &p);
	ck_assert_msg(r == 0, "%s", ctx.err);
	ck_assert_str_eq(p.id, "structs");
	ck_assert_str_eq(p.version, "338.v1");
	ck_assert_ptr_null(p.jenkins_version);
	ck_assert_uint_eq(p.n_deps, 0);
	ib_jenkins_plugin_release(&p);

	/* Header names are case-insensitive; no final line end; an empty dependency list. */
	r = parse("short-name: a\r\nPLUGIN-VERSION: 1.0\r\nPlugin-Dependencies: ", &p);
	ck_assert_msg(r == 0, "%s", ctx.err);
	ck_assert_str_eq(p.id, "a");
	ck_assert_uint_eq(p.n_deps, 0);
	ib_jenkins_plugin_release(&p);
}
END_TEST

START_TEST(test_manifest_malformed)
{
	parse_fails("Manifest-Version: 1.0\r\nPlugin-Version: 1\r\n",
	            "'x.jpi': META-INF/MANIFEST.MF: no Short-Name (not a Jenkins plugin)");
	parse_fails("", "'x.jpi': META-INF/MANIFEST.MF: no Short-Name (not a Jenkins plugin)");
	parse_fails("Short-Name: a\r\n", "'x.jpi': META-INF/MANIFEST.MF: no Plugin-Version");
	/* The main section ends at the first empty line: what follows is not read. */
	parse_fails("Manifest-Version: 1.0\r\n\r\nShort-Name: a\r\nPlugin-Version: 1\r\n",
	            "'x.jpi': META-INF/MANIFEST.MF: no Short-Name (not a Jenkins plugin)");
	parse_fails(" continued\r\nShort-Name: a\r\n",
	            "'x.jpi': META-INF/MANIFEST.MF line 1: a continuation line with no header "
	            "before it");
	parse_fails("Short-Name: a\r\nno colon here\r\n",
	            "'x.jpi': META-INF/MANIFEST.MF line 2: 'no colon here' is not a header "
	            "(Name: value)");
	parse_fails("Short-Name: a\r\n: value\r\n",
	            "'x.jpi': META-INF/MANIFEST.MF line 2: ': value' is not a header (Name: "
	            "value)");
	parse_fails("Short Name: a\r\n",
	            "'x.jpi': META-INF/MANIFEST.MF line 1: 'Short Name' is not a header name");
	parse_fails("Short-Name: a\r\nShort-Name: b\r\n",
	            "'x.jpi': META-INF/MANIFEST.MF line 2: a second Short-Name (the first is on "
	            "line 1)");
	ib_ctx_init(&ctx);
	struct ib_jenkins_plugin p;
	ck_assert_int_eq(ib_jenkins_manifest_parse(&ctx, "'x.jpi'", "Short-Name: a\0b\n", 16, &p),
	                 -IB_E_SPEC);
	ck_assert_str_eq(ctx.err, "'x.jpi': META-INF/MANIFEST.MF line 1: a NUL byte");
	ib_jenkins_plugin_release(&p);
	parse_fails("Short-Name: a b\r\nPlugin-Version: 1\r\n",
	            "'x.jpi': META-INF/MANIFEST.MF line 1: Short-Name 'a b' is not a plugin id");
	parse_fails("Short-Name: a\r\nPlugin-Version: 1.0 (private)\r\n",
	            "'x.jpi': META-INF/MANIFEST.MF line 2: Plugin-Version '1.0 (private)' is "
	            "not a version");
	parse_fails("Short-Name: a\r\nPlugin-Version: 1\r\nJenkins-Version: \r\n",
	            "'x.jpi': META-INF/MANIFEST.MF line 3: Jenkins-Version '' is not a version");
	const char *head = "Short-Name: a\r\nPlugin-Version: 1\r\nPlugin-Dependencies: ";
	struct {
		const char *deps, *msg;
	} bad[] = {
	        {"b:1,,c:2", "Plugin-Dependencies has an empty entry"},
	        {"b:1,", "Plugin-Dependencies has an empty entry"},
	        {"b", "Plugin-Dependencies: 'b' is not id:version"},
	        {"b:", "Plugin-Dependencies: 'b:' is not id:version"},
	        {":1", "Plugin-Dependencies: ':1' is not id:version"},
	        {"b:1:2", "Plugin-Dependencies: 'b:1:2' is not id:version"},
	        {"b:1;resolution:=mandatory",
	         "Plugin-Dependencies: 'b' has 'resolution:=mandatory' (only "
	         "resolution:=optional is known)"},
	        {"b:1,b:2", "Plugin-Dependencies names 'b' twice"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_free_ char *text = xasprintf("%s%s\r\n", head, bad[i].deps);
		_cleanup_free_ char *msg =
		        xasprintf("'x.jpi': META-INF/MANIFEST.MF line 3: %s", bad[i].msg);
		parse_fails(text, msg);
	}
	/* Too large. */
	size_t big = IB_JENKINS_MAX_MANIFEST + 1;
	char *huge = xmalloc(big);
	memset(huge, 'a', big);
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_jenkins_manifest_parse(&ctx, "'x.jpi'", huge, big, &p), -IB_E_SPEC);
	ck_assert_str_eq(ctx.err, "'x.jpi': META-INF/MANIFEST.MF: larger than 1048576 bytes");
	ib_jenkins_plugin_release(&p);
	free(huge);
}
END_TEST

/* ---- plugins as zips ---- */

/* A zip holding the given members (name, text pairs, NULL-terminated); caller frees. */
static char *zip(size_t *ret_len, ...)
{
	size_t cap = 1 << 20, used = 0;
	char *buf = xmalloc(cap);
	struct archive *a = archive_write_new();
	ck_assert_int_eq(archive_write_set_format_zip(a), ARCHIVE_OK);
	ck_assert_int_eq(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
	va_list ap;
	va_start(ap, ret_len);
	for (const char *name; (name = va_arg(ap, const char *));) {
		const char *text = va_arg(ap, const char *);
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, name);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)strlen(text));
		ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
		ck_assert_int_eq(archive_write_data(a, text, strlen(text)), (la_ssize_t)strlen(text));
		archive_entry_free(e);
	}
	va_end(ap);
	ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	*ret_len = used;
	return buf;
}

/* A plugin's zip: its manifest (deps "" for none) and a class file. */
static char *plugin_zip(const char *id, const char *version, const char *deps, size_t *ret_len)
{
	_cleanup_free_ char *mf = xasprintf("Manifest-Version: 1.0\r\nShort-Name: %s\r\n"
	                                    "Plugin-Version: %s\r\nJenkins-Version: 2.440.3\r\n"
	                                    "%s%s%s\r\n",
	                                    id, version, *deps ? "Plugin-Dependencies: " : "", deps,
	                                    *deps ? "\r\n" : "");
	return zip(ret_len, "META-INF/", "", "META-INF/MANIFEST.MF", mf, "WEB-INF/lib/x.jar",
	           "not really a jar", NULL);
}

START_TEST(test_plugin_zip)
{
	size_t len;
	_cleanup_free_ char *z = plugin_zip("git", "5.2.2", "scm-api:683.vb_16722fb_b_80b_", &len);
	tu_write("dummy", "");
	FILE *f = fopen("git.jpi", "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(z, 1, len, f), len);
	fclose(f);
	struct ib_jenkins_plugin p;
	ib_ctx_init(&ctx);
	int r = ib_jenkins_plugin_read(&ctx, "'git.jpi'", "git.jpi", NULL, 0, &p);
	ck_assert_msg(r == 0, "%s", ctx.err);
	ck_assert_str_eq(p.id, "git");
	ck_assert_str_eq(p.deps[0].id, "scm-api");
	ib_jenkins_plugin_release(&p);

	/* Not a zip, empty, a zip with no manifest, a truncated zip: one error each. */
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_jenkins_plugin_read(&ctx, "'a.jpi'", NULL, "<html>404</html>", 16, &p),
	                 -IB_E_SPEC);
	ck_assert_msg(startswith(ctx.err, "'a.jpi' is not a readable zip (a Jenkins plugin is "
	                                  "one): "),
	              "%s", ctx.err);
	ib_ctx_init(&ctx);
	r = ib_jenkins_plugin_read(&ctx, "'a.jpi'", NULL, "", 0, &p);
	ck_assert_int_eq(r, -IB_E_SPEC);
	ck_assert_msg(strstr(ctx.err, "'a.jpi'"), "%s", ctx.err);
	size_t zl;
	_cleanup_free_ char *nomf = zip(&zl, "index.jelly", "<div/>", NULL);
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_jenkins_plugin_read(&ctx, "'a.jpi'", NULL, nomf, zl, &p), -IB_E_SPEC);
	ck_assert_str_eq(ctx.err, "'a.jpi' has no META-INF/MANIFEST.MF (not a Jenkins plugin)");
	for (size_t cut = 1; cut < len; cut += 7) {
		ib_ctx_init(&ctx);
		r = ib_jenkins_plugin_read(&ctx, "'t.jpi'", NULL, z, cut, &p);
		ck_assert_int_eq(r, r == 0 ? 0 : -IB_E_SPEC);
		ck_assert(r == 0 || strstr(ctx.err, "'t.jpi'"));
		ib_jenkins_plugin_release(&p);
	}
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_jenkins_plugin_read(&ctx, "'m.jpi'", "missing.jpi", NULL, 0, &p),
	                 -IB_E_SPEC);
	ck_assert_msg(strstr(ctx.err, "'m.jpi' is not a readable zip"), "%s", ctx.err);
}
END_TEST

/* ---- the closure, over layer entries ---- */

static struct lentries L;
static struct ib_file_spec fspec = {.pos = {"images/t.yaml", 7, 5}};

static void add_plugin(const char *path, const char *id, const char *version, const char *deps)
{
	size_t len;
	char *z = plugin_zip(id, version, deps, &len);
	struct lentry e = {
	        .path = xstrdup(path),
	        .type = S_IFREG,
	        .perm = 0644,
	        .data = z,
	        .len = len,
	        .spec = &fspec,
	};
	lentries_add(&L, &e);
}

static void add_other(const char *path)
{
	struct lentry e = {.path = xstrdup(path), .type = S_IFREG, .perm = 0644,
	                   .data = xstrdup("x"), .len = 1, .why = xstrdup("imgbuild")};
	lentries_add(&L, &e);
}

static int check(void)
{
	ib_ctx_init(&ctx);
	ck_assert_int_eq(lentries_sort_merge(&ctx, &L), 0);
	return layer_check_jenkins_plugins(&ctx, &L);
}

/* A small closure: a -> b (>= 2.0), c optional (>= 1.5); b -> d. */
static void closure(void)
{
	lentries_release(&L);
	add_plugin("p/a.jpi", "a", "1.0", "b:2.0,c:1.5;resolution:=optional");
	add_plugin("p/b.jpi", "b", "2.1.v12ab", "d:1");
	add_plugin("p/d.hpi", "d", "1.0.1", "");
	add_other("p/readme.txt");
	add_other("p/sub/z.txt");
	add_other("etc/x");
}

START_TEST(test_closure)
{
	closure();
	ck_assert_msg(check() == 0, "%s", ctx.err);

	/* The optional one, present and new enough; not a plugin directory: no check. */
	add_plugin("p/c.jpi", "c", "1.5", "");
	add_other("q/notes.jpi.txt");
	ck_assert_msg(check() == 0, "%s", ctx.err);

	/* Removed from the set: its dependents are named, with where they came from. */
	lentries_release(&L);
	add_plugin("p/a.jpi", "a", "1.0", "b:2.0,c:1.5;resolution:=optional");
	add_plugin("p/d.hpi", "d", "1.0.1", "");
	ck_assert_int_eq(check(), -IB_E_SPEC);
	ck_assert_str_eq(ctx.err, "the Jenkins plugins in '/p' would not all load (1 problem): "
	                          "'a' 1.0 '/p/a.jpi' (images/t.yaml:7:5) needs 'b' 2.0 or later, "
	                          "which is not there");

	/* Too old, required and optional. */
	lentries_release(&L);
	add_plugin("p/a.jpi", "a", "1.0", "b:2.0,c:1.5;resolution:=optional");
	add_plugin("p/b.jpi", "b", "1.9", "d:1");
	add_plugin("p/d.hpi", "d", "0.9", "");
	add_plugin("p/c.jpi", "c", "1.4.9", "");
	ck_assert_int_eq(check(), -IB_E_SPEC);
	ck_assert_str_eq(ctx.err,
	                 "the Jenkins plugins in '/p' would not all load (3 problems): 'a' 1.0 "
	                 "'/p/a.jpi' (images/t.yaml:7:5) needs 'b' 2.0 or later, but '/p/b.jpi' "
	                 "(images/t.yaml:7:5) is 1.9; 'a' 1.0 '/p/a.jpi' (images/t.yaml:7:5) needs "
	                 "'c' 1.5 or later (when present), but '/p/c.jpi' (images/t.yaml:7:5) is "
	                 "1.4.9; 'b' 1.9 '/p/b.jpi' (images/t.yaml:7:5) needs 'd' 1 or later, but "
	                 "'/p/d.hpi' (images/t.yaml:7:5) is 0.9");

	/* Each directory is a set of its own: d in p/x does not serve p. */
	lentries_release(&L);
	add_plugin("p/x/d.jpi", "d", "1", "");
	add_plugin("p/b.jpi", "b", "1", "d:1");
	ck_assert_int_eq(check(), -IB_E_SPEC);
	ck_assert_msg(strstr(ctx.err, "'b' 1 '/p/b.jpi' (images/t.yaml:7:5) needs 'd' 1 or later, "
	                              "which is not there"),
	              "%s", ctx.err);

	/* Named after another plugin, twice the same plugin. */
	lentries_release(&L);
	add_plugin("p/a.jpi", "b", "1", "");
	add_plugin("p/b.jpi", "b", "1", "");
	ck_assert_int_eq(check(), -IB_E_SPEC);
	ck_assert_str_eq(ctx.err, "the Jenkins plugins in '/p' would not all load (2 problems): "
	                          "'/p/a.jpi' (images/t.yaml:7:5) is the plugin 'b' (its "
	                          "Short-Name): Jenkins' plugin manager expects it as b.jpi; "
	                          "'/p/a.jpi' (images/t.yaml:7:5) and '/p/b.jpi' (images/t.yaml:7:5) "
	                          "are both the plugin 'b'");

	/* Many problems: the first few, and how many more. */
	lentries_release(&L);
	for (int i = 0; i < 12; i++) {
		_cleanup_free_ char *path = xasprintf("p/a%02d.jpi", i);
		_cleanup_free_ char *id = xasprintf("a%02d", i);
		add_plugin(path, id, "1", "gone:1");
	}
	ck_assert_int_eq(check(), -IB_E_SPEC);
	ck_assert_msg(strstr(ctx.err, "(12 problems)") && strstr(ctx.err, "; and 4 more") &&
	                      strlen(ctx.err) < sizeof(ctx.err) - 1,
	              "%s", ctx.err);

	/* An unreadable plugin: one error naming it; no other problem reported over it. */
	lentries_release(&L);
	add_plugin("p/a.jpi", "a", "1", "");
	struct lentry e = {.path = xstrdup("p/broken.hpi"), .type = S_IFREG, .perm = 0644,
	                   .data = xstrdup("<html>Not Found</html>"), .len = 22, .spec = &fspec};
	lentries_add(&L, &e);
	ck_assert_int_eq(check(), -IB_E_SPEC);
	ck_assert_msg(startswith(ctx.err, "'/p/broken.hpi' (images/t.yaml:7:5) is not a readable "
	                                  "zip (a Jenkins plugin is one): "),
	              "%s", ctx.err);
	lentries_release(&L);
}
END_TEST

/* Through ib_layer_build: a layer whose plugins are incomplete is not written. */
START_TEST(test_layer_refuses)
{
	size_t len;
	_cleanup_free_ char *z = plugin_zip("a", "1", "b:1", &len);
	FILE *f = fopen("a.jpi", "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(z, 1, len, f), len);
	fclose(f);
	struct ib_role role = {.name = (char *)"t"};
	struct ib_file_spec fs = {.source = ib_path_join(tu_dir, "a.jpi"),
	                          .dest = (char *)"/opt/jenkins/plugins/a.jpi",
	                          .pos = {"images/t.yaml", 9, 5}};
	struct ib_file_spec *files[] = {&fs};
	struct ib_resolved res = {.role = &role, .files = files, .n_files = 1};
	struct ib_project proj = {0};
	struct ib_layer_opts o = {.project = &proj, .role = &res, .mtime = IB_DEFAULT_EPOCH};
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_layer_build(&ctx, &o, "layer.tar"), -IB_E_SPEC);
	ck_assert_str_eq(ctx.err, "the Jenkins plugins in '/opt/jenkins/plugins' would not all "
	                          "load (1 problem): 'a' 1 '/opt/jenkins/plugins/a.jpi' "
	                          "(images/t.yaml:9:5) needs 'b' 1 or later, which is not there");
	ck_assert_int_ne(access("layer.tar", F_OK), 0);
	_cleanup_free_ char *left = tu_sh("ls -A");
	ck_assert_str_eq(left, "a.jpi\n");
	free(fs.source);
}
END_TEST

static Suite *jenkins_suite(void)
{
	Suite *s = suite_create("jenkins");
	TU_CASE(s, "version-order", test_version_order);
	TU_CASE(s, "manifest", test_manifest_real_shape);
	TU_CASE(s, "manifest-malformed", test_manifest_malformed);
	TU_CASE(s, "zip", test_plugin_zip);
	TU_CASE(s, "closure", test_closure);
	TU_CASE(s, "layer-refuses", test_layer_refuses);
	return s;
}

TU_MAIN(jenkins_suite)
