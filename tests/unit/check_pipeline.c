/* check_pipeline.c: the manifest JSON (beside and inside the image), the role input digest
 * and the checks digest. */
#include "pipeline/build.h"
#include "pipeline/manifest.h"
#include "testutil.h"

static struct ib_project proj;
static struct ib_role role;
static const struct ib_role *chain[1];
static struct ib_resolved res;
static struct ib_file_spec file;
static struct ib_file_spec *files[1];
static char src_path[4352], fb_path[4352];

static void fixture(void)
{
	memset(&proj, 0, sizeof(proj));
	memset(&role, 0, sizeof(role));
	memset(&res, 0, sizeof(res));
	memset(&file, 0, sizeof(file));
	proj.root = tu_dir;
	proj.name = (char *)"demo";
	proj.suite = (char *)"bookworm";
	proj.mirror = (char *)"http://deb.debian.org/debian";
	proj.arch = (char *)"amd64";
	proj.variant = (char *)"minbase";
	proj.formats = IB_FMT_RAW | IB_FMT_QCOW2;
	role.name = (char *)"base";
	chain[0] = &role;
	res.role = &role;
	res.chain = chain;
	res.n_chain = 1;
	res.disk_size = 3ull << 30;
	tu_write("files/a.conf", "alpha\n");
	tu_write("scripts/first.sh", "#!/bin/sh\necho hi\n");
	snprintf(src_path, sizeof(src_path), "%s/files/a.conf", tu_dir);
	snprintf(fb_path, sizeof(fb_path), "%s/scripts/first.sh", tu_dir);
	file.source = src_path;
	file.dest = (char *)"/etc/a.conf";
	file.mode = 0644;
	file.has_mode = 1;
	files[0] = &file;
	res.files = files;
	res.n_files = 1;
}

static void digest(char out[65])
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_role_digest(&ctx, &proj, &res, "rootfskey", 1704067200, out), 0);
}

START_TEST(test_digest_follows_inputs)
{
	char a[65], b[65];
	fixture();
	digest(a);
	digest(b);
	ck_assert_str_eq(a, b);

	tu_write("files/a.conf", "beta\n"); /* file contents */
	digest(b);
	ck_assert_str_ne(a, b);
	tu_write("files/a.conf", "alpha\n");
	digest(b);
	ck_assert_str_eq(a, b);

	file.mode = 0600; /* mode */
	digest(b);
	ck_assert_str_ne(a, b);
	file.mode = 0644;

	strv_push(&res.firstboot, fb_path); /* a first-boot script, then its contents */
	digest(b);
	ck_assert_str_ne(a, b);
	char c[65];
	tu_write("scripts/first.sh", "#!/bin/sh\necho changed\n");
	digest(c);
	ck_assert_str_ne(b, c);
	strv_release(&res.firstboot);

	strv_push(&res.units, "ssh.service");
	digest(b);
	ck_assert_str_ne(a, b);
	strv_release(&res.units);

	res.disk_size = 4ull << 30;
	digest(b);
	ck_assert_str_ne(a, b);
	res.disk_size = 3ull << 30;

	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_role_digest(&ctx, &proj, &res, "otherkey", 1704067200, b), 0);
	ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(test_digest_missing_source_is_an_error)
{
	char a[65];
	fixture();
	file.source = (char *)"/nonexistent/imgbuild/file";
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	ck_assert_int_lt(ib_role_digest(&ctx, &proj, &res, "k", 0, a), 0);
	ck_assert_ptr_nonnull(strstr(ctx.err, "/nonexistent/imgbuild/file"));
}
END_TEST

START_TEST(test_manifest_is_deterministic_json)
{
	fixture();
	struct ib_disk_layout l = {0};
	snprintf(l.disk_guid, sizeof(l.disk_guid), "11111111-2222-4333-8444-555555555555");
	snprintf(l.root_fs_uuid, sizeof(l.root_fs_uuid), "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee");
	snprintf(l.esp_vol_id, sizeof(l.esp_vol_id), "ABCD-1234");
	snprintf(l.kernel, sizeof(l.kernel), "/boot/vmlinuz-6.1.0-1-cloud-amd64");
	struct ib_package pk[] = {{(char *)"bash", (char *)"5.2.15-2+b2"},
				  {(char *)"weird\"name", (char *)"1\\0"}};
	struct ib_manifest m = {
		.project = &proj,
		.role = &res,
		.digest = "d1",
		.rootfs_key = "k1",
		.epoch = 1704067200,
		.layout = &l,
		.packages = pk,
		.n_packages = 2,
		.n_outputs = 1,
	};
	m.outputs[0].format = "raw";
	m.outputs[0].file = "base.raw";
	m.outputs[0].size = 3221225472LL;
	snprintf(m.outputs[0].sha256, 65, "%064d", 7);
	_cleanup_free_ char *a = ib_manifest_render(&m);
	_cleanup_free_ char *b = ib_manifest_render(&m);
	ck_assert_str_eq(a, b);
	tu_write("m.json", a);
	/* An independent JSON reader checks the shape and the escaping. */
	_cleanup_free_ char *out = tu_sh(
		"python3 -c 'import json; m=json.load(open(\"m.json\"));"
		"assert m[\"role\"]==\"base\" and m[\"inputs\"][\"digest\"]==\"d1\";"
		"assert m[\"inputs\"][\"files\"]==[{\"destination\":\"/etc/a.conf\",\"source\":\"files/a.conf\"}];"
		"assert m[\"packages\"][1]=={\"name\":\"weird\\\"name\",\"version\":\"1\\\\0\"};"
		"assert m[\"outputs\"][\"raw\"][\"size\"]==3221225472;"
		"assert m[\"disk\"][\"esp_volume_id\"]==\"ABCD-1234\";"
		"assert m[\"inputs\"][\"rootfs_key\"]==\"k1\" and \"base_image\" not in m[\"inputs\"];"
		"print(\"ok\")'");
	ck_assert_str_eq(out, "ok\n");
	ck_assert_ptr_null(strstr(a, tu_dir)); /* no build-host paths */

	/* The copy inside the image: the same less `outputs`, whatever the outputs say. */
	m.in_image = 1;
	_cleanup_free_ char *in = ib_manifest_render(&m);
	m.outputs[0].size = 1;
	_cleanup_free_ char *in2 = ib_manifest_render(&m);
	ck_assert_str_eq(in, in2);
	tu_write("in.json", in);
	_cleanup_free_ char *out2 = tu_sh(
		"python3 -c 'import json; m=json.load(open(\"m.json\")); i=json.load(open(\"in.json\"));"
		"assert \"outputs\" not in i; del m[\"outputs\"]; assert m==i; print(\"ok\")'");
	ck_assert_str_eq(out2, "ok\n");
}
END_TEST

/* A role on a base image: the image is the input, not a bootstrap or a disk imgbuild laid
 * out; the copy inside is still the one beside less `outputs`. */
START_TEST(test_manifest_of_image_base)
{
	fixture();
	struct ib_base_image bi = {.url = (char *)"http://127.0.0.1:1/d.qcow2",
				   .sha256 = (char *)"ab",
				   .format = IB_FMT_QCOW2};
	res.base_image = &bi;
	struct ib_manifest m = {.project = &proj, .role = &res, .digest = "d1",
				.rootfs_key = "k1", .n_outputs = 1};
	m.outputs[0].format = "qcow2";
	m.outputs[0].file = "base.qcow2";
	_cleanup_free_ char *a = ib_manifest_render(&m);
	m.in_image = 1;
	_cleanup_free_ char *in = ib_manifest_render(&m);
	res.base_image = NULL;
	tu_write("b.json", a);
	tu_write("bin.json", in);
	_cleanup_free_ char *out = tu_sh(
		"python3 -c 'import json; m=json.load(open(\"b.json\")); i=m[\"inputs\"];"
		"assert i[\"base_image\"]=={\"url\":\"http://127.0.0.1:1/d.qcow2\",\"sha256\":\"ab\",\"format\":\"qcow2\"},i;"
		"assert not {\"rootfs_key\",\"variant\",\"disk_size\"}&set(i) and \"disk\" not in m,m;"
		"assert i[\"suite\"]==\"bookworm\";"
		"del m[\"outputs\"]; assert m==json.load(open(\"bin.json\")); print(\"ok\")'");
	ck_assert_str_eq(out, "ok\n");
}
END_TEST

/* What a build is verified against: the chain's checks, and only them. */
START_TEST(test_checks_digest_follows_checks)
{
	fixture();
	char a[65], b[65], d1[65], d2[65];
	ib_checks_digest(&res, a);
	digest(d1);
	struct ib_check_file cf = {.path = (char *)"/etc/a.conf", .mode = 0644, .has_mode = 1};
	struct ib_checks ck = {.files = &cf, .n_files = 1};
	const struct ib_checks *cks[] = {&ck};
	res.checks = cks;
	res.n_checks = 1;
	ib_checks_digest(&res, b);
	ck_assert_str_ne(a, b);
	digest(d2);
	ck_assert_str_eq(d1, d2); /* checks are not an input of the image */
	cf.mode = 0600;
	ib_checks_digest(&res, a);
	ck_assert_str_ne(a, b);
	cf.mode = 0644;
	ib_checks_digest(&res, a);
	ck_assert_str_eq(a, b);
	res.checks = NULL;
	res.n_checks = 0;
}
END_TEST

static Suite *pipeline_suite(void)
{
	Suite *s = suite_create("pipeline");
	TU_CASE(s, "digest", test_digest_follows_inputs);
	TU_CASE(s, "digest-missing", test_digest_missing_source_is_an_error);
	TU_CASE(s, "manifest", test_manifest_is_deterministic_json);
	TU_CASE(s, "manifest-image-base", test_manifest_of_image_base);
	TU_CASE(s, "checks-digest", test_checks_digest_follows_checks);
	return s;
}

TU_MAIN(pipeline_suite)
