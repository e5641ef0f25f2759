/* vmanifest.c: the image carries its manifest (pipeline/manifest.h), and it is this spec's. */
#include "util/jsonr.h"
#include "verify_int.h"

#define MANIFEST_PATH "/etc/imgbuild/manifest.json"
#define MAX_MANIFEST  (16u << 20)

static int is_hex64(const char *s)
{
	if (!s || strlen(s) != 64)
		return 0;
	return strspn(s, "0123456789abcdef") == 64;
}

void v_check_manifest(struct vctx *v, const struct ib_resolved *role, const char *expect_digest)
{
	const char *name = "manifest";
	char why[512];
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	if (!v->mounted) {
		v_result(v, name, 0, "not checked: the root filesystem did not mount");
		return;
	}
	if (guestfs_is_file(v->g, MANIFEST_PATH) <= 0) {
		v_result(v, name, 0, "no %s: the image does not say what it was made from",
		         MANIFEST_PATH);
		return;
	}
	if (v_read(v, MANIFEST_PATH, MAX_MANIFEST, &data, &len, why, sizeof(why)) < 0) {
		v_result(v, name, 0, "%s", why);
		return;
	}
	struct jsonr_error e;
	_cleanup_jsonr_ struct jsonr *m = NULL;
	if (jsonr_parse_ex(data, len, NULL, &m, &e) < 0) {
		v_result(v, name, 0, "%s: invalid JSON at line %u, column %u: %s", MANIFEST_PATH,
		         e.line, e.col, e.msg);
		return;
	}
	const struct jsonr *ver = jsonr_get_type(m, "manifest_version", JSONR_NUMBER);
	const char *r = jsonr_get_str(m, "role");
	const char *digest = jsonr_get_str(jsonr_get(m, "inputs"), "digest");
	if (!ver || !r || !is_hex64(digest)) {
		v_result(v, name, 0, "%s lacks manifest_version, role or inputs.digest",
		         MANIFEST_PATH);
		return;
	}
	/* Digests of the image files cannot be inside them: such a key means a stale copy. */
	if (jsonr_get(m, "outputs")) {
		v_result(v, name, 0, "%s has an outputs key: it is the manifest of other files",
		         MANIFEST_PATH);
		return;
	}
	/* Without a role, the partitions told the layout; what the image says it was built
	 * from must agree, or an imgbuild disk with its partitions moved would pass as a
	 * vendor's. */
	int on_base = jsonr_get(jsonr_get(m, "inputs"), "base_image") != NULL;
	if (v->layout_guessed && v->vendor_layout && !on_base) {
		v_result(v, name, 0,
		         "%s says imgbuild laid the disk out, but its partitions are not "
		         "imgbuild's (1 BIOS, 2 EFI, 3 root)",
		         MANIFEST_PATH);
		return;
	}
	if (role && !streq(r, role->role->name)) {
		v_result(v, name, 0, "%s is role '%s', expected '%s'", MANIFEST_PATH, r,
		         role->role->name);
		return;
	}
	if (expect_digest && !streq(digest, expect_digest)) {
		v_result(v, name, 0,
		         "built from inputs %.12s, but the spec gives %.12s (a changed spec, "
		         "epoch or imgbuild version)",
		         digest, expect_digest);
		return;
	}
	v_result(v, name, 1, "%s: role %s, inputs %.12s%s", MANIFEST_PATH, r, digest,
	         expect_digest ? " as the spec gives" : "");
}
