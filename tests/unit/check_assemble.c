/* check_assemble.c: the namespace child's result file and extraction without devices. */
#include <archive.h>
#include <archive_entry.h>

#include "pipeline/assemble.h"
#include "testutil.h"

static struct ib_assemble_result sample(void)
{
	struct ib_assemble_result r;
	memset(&r, 0, sizeof(r));
	r.layout.bios_start = 2048;
	r.layout.bios_sectors = 2048;
	r.layout.esp_start = 4096;
	r.layout.esp_sectors = 131072;
	r.layout.root_start = 135168;
	r.layout.root_sectors = 4059103;
	snprintf(r.layout.disk_guid, sizeof(r.layout.disk_guid), "%s",
	         "0b6f6a1e-1a2b-4c3d-8e4f-001122334455");
	snprintf(r.layout.root_fs_uuid, sizeof(r.layout.root_fs_uuid), "%s",
	         "9a0b1c2d-3e4f-4a5b-9c6d-7e8f90a1b2c3");
	snprintf(r.layout.esp_vol_id, sizeof(r.layout.esp_vol_id), "%s", "ABCD-1234");
	snprintf(r.layout.kernel, sizeof(r.layout.kernel), "%s",
	         "/boot/vmlinuz-6.1.0-28-cloud-amd64");
	r.n_pkgs = 2;
	r.pkgs = xcalloc(2, sizeof(*r.pkgs));
	r.pkgs[0].name = xstrdup("base-files");
	r.pkgs[0].version = xstrdup("12.4+deb12u8");
	r.pkgs[1].name = xstrdup("systemd");
	r.pkgs[1].version = xstrdup("252.33-1~deb12u1");
	return r;
}

START_TEST(test_result_round_trip)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_assemble_result in = sample(), out;
	memset(&out, 0, sizeof(out));
	struct strv logs = {0}, back = {0};
	strv_push(&logs, "1 a warning");
	ck_assert_int_eq(ib_assemble_result_write(&ctx, "r", 0, NULL, &in, &logs), 0);
	int rc = 1;
	char err[64];
	ck_assert_int_eq(ib_assemble_result_read(&ctx, "r", &rc, err, sizeof(err), &out, &back), 0);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(err, "");
	ck_assert(memcmp(&in.layout, &out.layout, sizeof(in.layout)) == 0);
	ck_assert_uint_eq(out.n_pkgs, 2);
	ck_assert_str_eq(out.pkgs[1].name, "systemd");
	ck_assert_str_eq(out.pkgs[1].version, "252.33-1~deb12u1");
	ck_assert_uint_eq(back.n, 1);
	ck_assert_str_eq(back.v[0], "1 a warning");
	ib_assemble_result_release(&in);
	ib_assemble_result_release(&out);
	strv_release(&logs);
	strv_release(&back);
}
END_TEST

START_TEST(test_result_carries_the_error_and_its_code)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_assemble_result in, out;
	memset(&in, 0, sizeof(in));
	memset(&out, 0, sizeof(out));
	ck_assert_int_eq(ib_assemble_result_write(&ctx, "r", -IB_E_SPEC,
	                                          "unit 'x.service' not found\nsecond line", &in,
	                                          NULL),
	                 0);
	int rc = 0;
	char err[256];
	ck_assert_int_eq(ib_assemble_result_read(&ctx, "r", &rc, err, sizeof(err), &out, NULL), 0);
	ck_assert_int_eq(rc, -IB_E_SPEC);
	ck_assert_str_eq(err, "unit 'x.service' not found; second line");
	ck_assert_uint_eq(out.n_pkgs, 0);
}
END_TEST

START_TEST(test_result_truncated_is_an_error)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_assemble_result out;
	memset(&out, 0, sizeof(out));
	int rc = 0;
	char err[64];
	tu_write("r", "imgbuild-assemble-1\nrc 0\npackage systemd 252\n");
	ck_assert_int_lt(ib_assemble_result_read(&ctx, "r", &rc, err, sizeof(err), &out, NULL), 0);
	ck_assert_ptr_nonnull(strstr(ctx.err, "not a complete assembly result"));
	ck_assert_uint_eq(out.n_pkgs, 0);
	ib_ctx_init(&ctx);
	tu_write("r", "something else\nend\n");
	ck_assert_int_lt(ib_assemble_result_read(&ctx, "r", &rc, err, sizeof(err), &out, NULL), 0);
}
END_TEST

START_TEST(test_step_names)
{
	ck_assert_str_eq(ib_assemble_step_name(IB_ASSEMBLE_ROOTFS), "rootfs");
	ck_assert_str_eq(ib_assemble_step_name(IB_ASSEMBLE_DISK), "disk");
	ck_assert_ptr_null(ib_assemble_step_name(IB_ASSEMBLE_ROOTFS | IB_ASSEMBLE_DISK));
	ck_assert_uint_eq(ib_assemble_step_parse("layer"), IB_ASSEMBLE_LAYER);
	ck_assert_uint_eq(ib_assemble_step_parse("qcow2"), 0);
}
END_TEST

/* A tar with /dev/null (a character device) and a regular file, as mmdebstrap writes. */
static void write_dev_tar(const char *path)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "./dev/");
	archive_entry_set_filetype(e, AE_IFDIR);
	archive_entry_set_perm(e, 0755);
	ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
	archive_entry_clear(e);
	archive_entry_set_pathname(e, "./dev/null");
	archive_entry_set_filetype(e, AE_IFCHR);
	archive_entry_set_perm(e, 0666);
	archive_entry_set_rdevmajor(e, 1);
	archive_entry_set_rdevminor(e, 3);
	ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
	archive_entry_clear(e);
	archive_entry_set_pathname(e, "./etc/hostname");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, 10);
	ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
	archive_write_data(a, "localhost\n", 10);
	archive_entry_free(e);
	archive_write_close(a);
	archive_write_free(a);
}

START_TEST(test_extract_without_devices)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	write_dev_tar("dev.tar");
	ck_assert_int_eq(ib_mkdir_p(&ctx, "tree", 0755), 0);
	ck_assert_int_eq(ib_tree_extract(&ctx, "dev.tar", "tree", IB_EXTRACT_NO_DEVICES), 0);
	ck_assert(ib_exists("tree/dev"));
	ck_assert(!ib_exists("tree/dev/null"));
	ck_assert_int_eq(ib_file_size("tree/etc/hostname"), 10);
	if (geteuid() == 0) { /* without the flag, root gets the node */
		ck_assert_int_eq(ib_mkdir_p(&ctx, "tree2", 0755), 0);
		ck_assert_int_eq(ib_tree_extract(&ctx, "dev.tar", "tree2", 0), 0);
		struct stat st;
		ck_assert_int_eq(lstat("tree2/dev/null", &st), 0);
		ck_assert(S_ISCHR(st.st_mode));
	}
}
END_TEST

START_TEST(test_check_as_root_needs_nothing)
{
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	if (geteuid() == 0)
		ck_assert_int_eq(ib_assemble_check(&ctx), 0);
}
END_TEST

static Suite *assemble_suite(void)
{
	Suite *s = suite_create("assemble");
	TU_CASE(s, "result", test_result_round_trip);
	TU_CASE(s, "result-error", test_result_carries_the_error_and_its_code);
	TU_CASE(s, "result-truncated", test_result_truncated_is_an_error);
	TU_CASE(s, "steps", test_step_names);
	TU_CASE(s, "extract-no-devices", test_extract_without_devices);
	TU_CASE(s, "check-root", test_check_as_root_needs_nothing);
	return s;
}

TU_MAIN(assemble_suite)
