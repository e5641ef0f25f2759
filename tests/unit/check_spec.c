/* check_spec.c: unit tests for spec loading, strictness, resolution and sizes. */
#include <limits.h>
#include <sys/stat.h>

#include "spec/spec.h"
#include "util/strbuf.h"
#include "testutil.h"

static const char project_yaml[] = "project: quode-sre\n"
                                   "debian:\n"
                                   "  suite: bookworm\n"
                                   "  mirror: http://deb.debian.org/debian\n";

/* A project with no roles yet. */
static void setup_project(void)
{
	tu_write("imgbuild.yaml", project_yaml);
	ck_assert_int_eq(mkdir("images", 0755), 0);
}

static struct ib_project *load_ok(void)
{
	struct ib_ctx ctx;
	struct ib_project *p = NULL;
	ib_ctx_init(&ctx);
	int r = ib_project_load(&ctx, ".", &p);
	ck_assert_msg(r == 0, "load failed (%d): %s", r, ctx.err);
	ck_assert_ptr_nonnull(p);
	return p;
}

static int sentinel;

/* Load "." and expect exactly one IB_E_SPEC error with this text; the output pointer
 * must be left alone. */
static void expect_error(const char *want)
{
	struct ib_ctx ctx;
	struct ib_project *p = (struct ib_project *)&sentinel;
	ib_ctx_init(&ctx);
	int r = ib_project_load(&ctx, ".", &p);
	ck_assert_msg(r == -IB_E_SPEC, "expected -IB_E_SPEC, got %d (%s)", r, ctx.err);
	ck_assert_ptr_eq(p, (struct ib_project *)&sentinel);
	ck_assert_str_eq(ctx.err, want);
}

/* Same, for messages whose tail comes from libyaml or the system: a prefix and a word. */
static void expect_error_like(const char *prefix, const char *word)
{
	struct ib_ctx ctx;
	struct ib_project *p = (struct ib_project *)&sentinel;
	ib_ctx_init(&ctx);
	int r = ib_project_load(&ctx, ".", &p);
	ck_assert_msg(r == -IB_E_SPEC, "expected -IB_E_SPEC, got %d (%s)", r, ctx.err);
	ck_assert_ptr_eq(p, (struct ib_project *)&sentinel);
	ck_assert_msg(startswith(ctx.err, prefix), "'%s' does not start with '%s'", ctx.err,
	              prefix);
	ck_assert_msg(strstr(ctx.err, word), "'%s' does not mention '%s'", ctx.err, word);
}

/* One role file in an otherwise valid project. */
static void expect_role_error(const char *role_yaml, const char *want)
{
	setup_project();
	tu_write("images/base.yaml", role_yaml);
	expect_error(want);
}

/* The same, once the project exists. */
static void expect_role_error_again(const char *role_yaml, const char *want)
{
	tu_write("images/base.yaml", role_yaml);
	expect_error(want);
}

static void write_four_roles(void)
{
	setup_project();
	tu_write("files/motd", "welcome\n");
	tu_write("files/motd.master", "control plane\n");
	tu_write("files/conf.d/a.conf", "a=1\n");
	tu_write("ansible-free-scripts/firstboot.sh", "#!/bin/sh\n");
	tu_write("ansible-free-scripts/record-role.sh", "#!/bin/sh\n");
	tu_write("ansible-free-scripts/kubeadm-init.sh", "#!/bin/sh\n");
	tu_write("images/base.yaml", "description: Common base\n"
	                             "packages: [openssh-server, curl, ca-certificates]\n"
	                             "files:\n"
	                             "  - source: files/motd\n"
	                             "    destination: /etc/motd\n"
	                             "  - source: ansible-free-scripts/firstboot.sh\n"
	                             "    destination: //usr/local/sbin//./imgbuild-firstboot/\n"
	                             "    mode: 0755\n"
	                             "  - source: files/conf.d\n"
	                             "    destination: /etc/imgbuild/conf.d\n"
	                             "    owner: \"0:1000\"\n"
	                             "    mode: \"0750\"\n"
	                             "units:\n"
	                             "  enable: [ssh.service, imgbuild-firstboot.service]\n"
	                             "firstboot: [ansible-free-scripts/record-role.sh]\n"
	                             "cloud_init:\n"
	                             "  ssh_pwauth: false\n"
	                             "  growpart: {mode: auto, devices: [\"/\"]}\n");
	tu_write("images/master.yaml", "extends: base\n"
	                               "description: Control plane\n"
	                               "packages: [kubeadm, curl]\n"
	                               "files:\n"
	                               "  - source: files/motd.master\n"
	                               "    destination: /etc/motd\n"
	                               "units:\n"
	                               "  enable: [kubelet.service, ssh.service]\n"
	                               "firstboot:\n"
	                               "  - ansible-free-scripts/record-role.sh\n"
	                               "  - ansible-free-scripts/kubeadm-init.sh\n"
	                               "cloud_init:\n"
	                               "  ssh_pwauth: true\n"
	                               "  hostname: master\n"
	                               "disk:\n"
	                               "  size: 8G\n");
	tu_write("images/worker.yaml", "name: worker\n"
	                               "extends: base\n"
	                               "packages: [kubeadm=1.29.0-1.1]\n");
	tu_write("images/tooling.yaml", "extends: base\n"
	                                "abstract: no\n"
	                                "packages: [git, jq]\n"
	                                "disk: {size: 20GiB}\n");
	/* Not role files: ignored. */
	tu_write("images/README.md", "# roles\n");
	tu_write("images/old.yml", "garbage: [\n");
	tu_write("images/.hidden.yaml", "garbage: [\n");
}

static char *here(const char *rel)
{
	char cwd[PATH_MAX];
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	char *real = realpath(cwd, NULL);
	ck_assert_ptr_nonnull(real);
	char *s = rel ? xasprintf("%s/%s", real, rel) : xstrdup(real);
	free(real);
	return s;
}

START_TEST(test_valid_project)
{
	write_four_roles();
	struct ib_project *p = load_ok();
	_cleanup_free_ char *root = here(NULL);
	_cleanup_free_ char *out = here("out");
	_cleanup_free_ char *path = here("imgbuild.yaml");

	ck_assert_str_eq(p->root, root);
	ck_assert_str_eq(p->path, path);
	ck_assert_str_eq(p->name, "quode-sre");
	ck_assert_str_eq(p->suite, "bookworm");
	ck_assert_str_eq(p->mirror, "http://deb.debian.org/debian");
	ck_assert_str_eq(p->arch, "amd64");
	ck_assert_str_eq(p->variant, "minbase");
	ck_assert_str_eq(p->output_dir, out);
	ck_assert_uint_eq(p->formats, IB_FMT_RAW | IB_FMT_QCOW2);
	ck_assert_uint_eq(p->disk_size, UINT64_C(4) << 30);
	ck_assert_uint_eq(p->files.n, 5);
	ck_assert_str_eq(p->files.v[0], path);
	ck_assert_str_eq(p->file_names.v[0], "imgbuild.yaml");
	ck_assert_str_eq(p->file_names.v[1], "images/base.yaml");

	ck_assert_uint_eq(p->n_roles, 4);
	ck_assert_str_eq(p->roles[0].name, "base");
	ck_assert_str_eq(p->roles[1].name, "master");
	ck_assert_str_eq(p->roles[2].name, "tooling");
	ck_assert_str_eq(p->roles[3].name, "worker");

	const struct ib_role *b = ib_project_find_role(p, "base");
	ck_assert_ptr_eq(b, &p->roles[0]);
	ck_assert_ptr_null(ib_project_find_role(p, "nope"));
	_cleanup_free_ char *bpath = here("images/base.yaml");
	ck_assert_str_eq(b->path, bpath);
	ck_assert_str_eq(b->pos.file, "images/base.yaml");
	ck_assert_int_eq(b->pos.line, 1);
	ck_assert_int_eq(b->pos.col, 1);
	ck_assert_str_eq(b->description, "Common base");
	ck_assert_ptr_null(b->extends);
	ck_assert_int_eq(b->abstract, 0);
	ck_assert_uint_eq(b->disk_size, 0);
	ck_assert_uint_eq(b->packages.n, 3);
	ck_assert_str_eq(b->packages.v[0], "openssh-server");
	ck_assert_str_eq(b->packages.v[2], "ca-certificates");

	ck_assert_uint_eq(b->n_files, 3);
	_cleanup_free_ char *motd = here("files/motd");
	ck_assert_str_eq(b->files[0].source, motd);
	ck_assert_str_eq(b->files[0].dest, "/etc/motd");
	ck_assert_uint_eq(b->files[0].mode, 0644);
	ck_assert_int_eq(b->files[0].has_mode, 0);
	ck_assert_str_eq(b->files[0].owner, "root:root");
	ck_assert_int_eq(b->files[0].uid, 0);
	ck_assert_int_eq(b->files[0].gid, 0);
	ck_assert_str_eq(b->files[0].pos.file, "images/base.yaml");
	ck_assert_int_eq(b->files[0].pos.line, 4);
	ck_assert_int_eq(b->files[0].pos.col, 5);
	ck_assert_str_eq(b->files[1].dest, "/usr/local/sbin/imgbuild-firstboot");
	ck_assert_uint_eq(b->files[1].mode, 0755);
	ck_assert_int_eq(b->files[1].has_mode, 1);
	ck_assert_str_eq(b->files[2].dest, "/etc/imgbuild/conf.d");
	ck_assert_uint_eq(b->files[2].mode, 0750);
	ck_assert_str_eq(b->files[2].owner, "0:1000");
	ck_assert_int_eq(b->files[2].uid, 0);
	ck_assert_int_eq(b->files[2].gid, 1000);

	ck_assert_uint_eq(b->units.n, 2);
	ck_assert_str_eq(b->units.v[1], "imgbuild-firstboot.service");
	ck_assert_uint_eq(b->firstboot.n, 1);
	_cleanup_free_ char *rec = here("ansible-free-scripts/record-role.sh");
	ck_assert_str_eq(b->firstboot.v[0], rec);

	ck_assert_uint_eq(b->n_cloud_init, 2);
	ck_assert_str_eq(b->cloud_init[0].key, "ssh_pwauth");
	ck_assert_str_eq(b->cloud_init[0].yaml, "ssh_pwauth: false\n");
	ck_assert_str_eq(b->cloud_init[1].key, "growpart");
	ck_assert_str_eq(b->cloud_init[1].yaml, "growpart:\n  mode: auto\n  devices:\n  - \"/\"\n");

	const struct ib_role *m = ib_project_find_role(p, "master");
	ck_assert_str_eq(m->extends, "base");
	ck_assert_str_eq(m->extends_pos.file, "images/master.yaml");
	ck_assert_int_eq(m->extends_pos.line, 1);
	ck_assert_int_eq(m->extends_pos.col, 10);
	ck_assert_uint_eq(m->disk_size, UINT64_C(8) << 30);

	const struct ib_role *w = ib_project_find_role(p, "worker");
	ck_assert_int_eq(w->pos.line, 1);
	ck_assert_int_eq(w->pos.col, 7);
	ck_assert_str_eq(w->packages.v[0], "kubeadm=1.29.0-1.1");
	const struct ib_role *t = ib_project_find_role(p, "tooling");
	ck_assert_uint_eq(t->disk_size, UINT64_C(20) << 30);
	ck_assert_int_eq(t->abstract, 0);
	ib_project_free(p);
}
END_TEST

START_TEST(test_project_options)
{
	tu_write("imgbuild.yaml", "project: p1\n"
	                          "debian:\n"
	                          "  suite: trixie\n"
	                          "  mirror: file:///srv/mirror\n"
	                          "  architecture: amd64\n"
	                          "  variant: apt\n"
	                          "output:\n"
	                          "  dir: ./build//images/../artifacts/\n"
	                          "  formats: [qcow2]\n"
	                          "disk:\n"
	                          "  size: 10G\n");
	tu_write("images/x.yaml", "abstract: true\n");
	struct ib_project *p = load_ok();
	_cleanup_free_ char *out = here("build/artifacts");
	ck_assert_str_eq(p->variant, "apt");
	ck_assert_str_eq(p->suite, "trixie");
	ck_assert_str_eq(p->output_dir, out);
	ck_assert_uint_eq(p->formats, IB_FMT_QCOW2);
	ck_assert_uint_eq(p->disk_size, UINT64_C(10) << 30);
	ck_assert_int_eq(p->roles[0].abstract, 1);
	ck_assert_str_eq(p->roles[0].name, "x");
	ib_project_free(p);

	tu_write("imgbuild.yaml", "project: p1\n"
	                          "debian: {suite: bookworm, mirror: https://m.example/debian}\n"
	                          "output: {dir: /var/tmp/imgbuild-out}\n");
	p = load_ok();
	ck_assert_str_eq(p->output_dir, "/var/tmp/imgbuild-out");
	ck_assert_uint_eq(p->formats, IB_FMT_RAW | IB_FMT_QCOW2);
	ib_project_free(p);
}
END_TEST

START_TEST(test_load_by_file_path)
{
	setup_project();
	ck_assert_int_eq(mkdir("sub", 0755), 0);
	tu_write("images/base.yaml", "packages: [curl]\n");
	struct ib_ctx ctx;
	struct ib_project *p = NULL;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_project_load(&ctx, "sub/../imgbuild.yaml", &p), 0);
	_cleanup_free_ char *root = here(NULL);
	ck_assert_str_eq(p->root, root);
	ck_assert_uint_eq(p->n_roles, 1);
	ib_project_free(p);
	ib_project_free(NULL);

	ck_assert_int_eq(ib_project_load(&ctx, "missing-dir", &p), -IB_E_SPEC);
}
END_TEST

START_TEST(test_resolve_merge)
{
	write_four_roles();
	tu_write("images/gpu-worker.yaml", "extends: master\n"
	                                   "packages: [nvidia-driver, curl]\n"
	                                   "files:\n"
	                                   "  - source: files/motd\n"
	                                   "    destination: /etc/imgbuild/conf.d\n"
	                                   "    mode: \"0600\"\n"
	                                   "firstboot: [ansible-free-scripts/firstboot.sh, "
	                                   "ansible-free-scripts/record-role.sh]\n"
	                                   "cloud_init:\n"
	                                   "  apt: {preserve_sources_list: true}\n"
	                                   "  hostname: gpu\n");
	struct ib_project *p = load_ok();
	struct ib_ctx ctx;
	struct ib_resolved *r = NULL;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_role_resolve(&ctx, p, "gpu-worker", &r), 0);

	ck_assert_uint_eq(r->n_chain, 3);
	ck_assert_str_eq(r->chain[0]->name, "base");
	ck_assert_str_eq(r->chain[1]->name, "master");
	ck_assert_str_eq(r->chain[2]->name, "gpu-worker");
	ck_assert_ptr_eq(r->role, r->chain[2]);

	const char *pkgs[] = {"ca-certificates", "curl", "kubeadm", "nvidia-driver",
	                      "openssh-server"};
	ck_assert_uint_eq(r->packages.n, ARRAY_SIZE(pkgs));
	for (size_t i = 0; i < ARRAY_SIZE(pkgs); i++)
		ck_assert_str_eq(r->packages.v[i], pkgs[i]);

	/* master's /etc/motd replaces base's in place; gpu-worker's conf.d entry likewise. */
	ck_assert_uint_eq(r->n_files, 3);
	_cleanup_free_ char *mm = here("files/motd.master");
	_cleanup_free_ char *motd = here("files/motd");
	ck_assert_str_eq(r->files[0]->dest, "/etc/motd");
	ck_assert_str_eq(r->files[0]->source, mm);
	ck_assert_str_eq(r->files[1]->dest, "/usr/local/sbin/imgbuild-firstboot");
	ck_assert_str_eq(r->files[2]->dest, "/etc/imgbuild/conf.d");
	ck_assert_str_eq(r->files[2]->source, motd);
	ck_assert_uint_eq(r->files[2]->mode, 0600);

	const char *units[] = {"imgbuild-firstboot.service", "kubelet.service", "ssh.service"};
	ck_assert_uint_eq(r->units.n, ARRAY_SIZE(units));
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		ck_assert_str_eq(r->units.v[i], units[i]);

	_cleanup_free_ char *rec = here("ansible-free-scripts/record-role.sh");
	_cleanup_free_ char *kinit = here("ansible-free-scripts/kubeadm-init.sh");
	_cleanup_free_ char *fb = here("ansible-free-scripts/firstboot.sh");
	ck_assert_uint_eq(r->firstboot.n, 3);
	ck_assert_str_eq(r->firstboot.v[0], rec);
	ck_assert_str_eq(r->firstboot.v[1], kinit);
	ck_assert_str_eq(r->firstboot.v[2], fb);

	ck_assert_uint_eq(r->n_cloud_init, 4);
	ck_assert_str_eq(r->cloud_init[0]->key, "apt");
	ck_assert_str_eq(r->cloud_init[1]->key, "growpart");
	ck_assert_str_eq(r->cloud_init[2]->key, "hostname");
	ck_assert_str_eq(r->cloud_init[2]->yaml, "hostname: gpu\n");
	ck_assert_str_eq(r->cloud_init[3]->key, "ssh_pwauth");
	ck_assert_str_eq(r->cloud_init[3]->yaml, "ssh_pwauth: true\n");

	/* Inherited from master. */
	ck_assert_uint_eq(r->disk_size, UINT64_C(8) << 30);
	ib_resolved_free(r);

	ck_assert_int_eq(ib_role_resolve(&ctx, p, "worker", &r), 0);
	ck_assert_uint_eq(r->disk_size, UINT64_C(4) << 30);
	ck_assert_uint_eq(r->n_chain, 2);
	ck_assert_uint_eq(r->packages.n, 4);
	ck_assert_str_eq(r->packages.v[2], "kubeadm=1.29.0-1.1");
	ck_assert_str_eq(r->files[0]->source, motd);
	ib_resolved_free(r);

	ck_assert_int_eq(ib_role_resolve(&ctx, p, "base", &r), 0);
	ck_assert_uint_eq(r->n_chain, 1);
	ck_assert_uint_eq(r->n_cloud_init, 2);
	ck_assert_str_eq(r->cloud_init[0]->key, "growpart");
	ib_resolved_free(r);
	ib_resolved_free(NULL);
	ib_project_free(p);
}
END_TEST

START_TEST(test_resolve_unknown)
{
	write_four_roles();
	struct ib_project *p = load_ok();
	struct ib_ctx ctx;
	struct ib_resolved *r = (struct ib_resolved *)&sentinel;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_role_resolve(&ctx, p, "db", &r), -IB_E_SPEC);
	ck_assert_ptr_eq(r, (struct ib_resolved *)&sentinel);
	ck_assert_str_eq(ctx.err, "unknown role 'db' (known roles: base, master, tooling, worker)");
	ib_project_free(p);
}
END_TEST

START_TEST(test_parse_size)
{
	static const struct {
		const char *s;
		int ok;
		uint64_t v;
	} cases[] = {
	        {"0", 1, 0},
	        {"1073741824", 1, UINT64_C(1) << 30},
	        {"1K", 1, 1024},
	        {"1KiB", 1, 1024},
	        {"1KB", 1, 1024},
	        {"512M", 1, UINT64_C(512) << 20},
	        {"4G", 1, UINT64_C(4) << 30},
	        {"2GiB", 1, UINT64_C(2) << 30},
	        {"2T", 1, UINT64_C(2) << 40},
	        {"16777215T", 1, UINT64_C(16777215) << 40},
	        {"18446744073709551615", 1, UINT64_MAX},
	        {"18446744073709551616", 0, 0},
	        {"16777216T", 0, 0},
	        {"17179869184G", 0, 0},
	        {"", 0, 0},
	        {"G", 0, 0},
	        {"-1G", 0, 0},
	        {"+1G", 0, 0},
	        {" 1G", 0, 0},
	        {"1G ", 0, 0},
	        {"1.5G", 0, 0},
	        {"1P", 0, 0},
	        {"1Gi", 0, 0},
	        {"1GBB", 0, 0},
	        {"1iB", 0, 0},
	        {"1B", 0, 0},
	        {"0x10", 0, 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t v = 12345;
		int r = ib_parse_size(cases[i].s, &v);
		ck_assert_msg(r == (cases[i].ok ? 0 : -1), "'%s': returned %d", cases[i].s, r);
		if (cases[i].ok)
			ck_assert_msg(v == cases[i].v, "'%s': got %llu", cases[i].s,
			              (unsigned long long)v);
		else
			ck_assert_msg(v == 12345, "'%s': output written on failure", cases[i].s);
	}
}
END_TEST

/* cloud_init values are re-emitted with their scalar styles and read back the same. */
START_TEST(test_cloud_init_emit)
{
	setup_project();
	tu_write("images/base.yaml", "cloud_init:\n"
	                             "  write_files:\n"
	                             "    - path: /etc/x\n"
	                             "      permissions: \"0644\"\n"
	                             "      content: |\n"
	                             "        line one\n"
	                             "        line two\n"
	                             "  runcmd: [[ls, -l], 'echo hi', !!str 123, ~, 7, 1.5]\n"
	                             "  users: []\n"
	                             "  keep: |+\n"
	                             "    x\n"
	                             "\n"
	                             "  empty: {}\n");
	struct ib_project *p = load_ok();
	const struct ib_role *b = &p->roles[0];
	ck_assert_uint_eq(b->n_cloud_init, 5);
	ck_assert_str_eq(b->cloud_init[0].key, "write_files");
	ck_assert_str_eq(b->cloud_init[0].yaml, "write_files:\n"
	                                        "- path: /etc/x\n"
	                                        "  permissions: \"0644\"\n"
	                                        "  content: |\n"
	                                        "    line one\n"
	                                        "    line two\n");
	ck_assert_str_eq(b->cloud_init[1].yaml, "runcmd:\n"
	                                        "- - ls\n"
	                                        "  - -l\n"
	                                        "- 'echo hi'\n"
	                                        "- !!str 123\n"
	                                        "- ~\n"
	                                        "- 7\n"
	                                        "- 1.5\n");
	ck_assert_str_eq(b->cloud_init[2].yaml, "users: []\n");
	ck_assert_str_eq(b->cloud_init[3].yaml, "keep: |+\n  x\n\n");
	ck_assert_str_eq(b->cloud_init[4].yaml, "empty: {}\n");

	/* Feeding the emitted text back in gives the same text: a fixed point. */
	struct strbuf sb = STRBUF_INIT;
	sb_adds(&sb, "cloud_init:\n");
	for (size_t i = 0; i < b->n_cloud_init; i++)
		for (const char *s = b->cloud_init[i].yaml; *s;) {
			size_t n = strcspn(s, "\n");
			sb_addf(&sb, "%s%.*s\n", n ? "  " : "", (int)n, s);
			s += n + (s[n] == '\n');
		}
	tu_write("images/copy.yaml", sb_str(&sb));
	sb_release(&sb);
	struct ib_project *q = load_ok();
	const struct ib_role *c = ib_project_find_role(q, "copy");
	ck_assert_uint_eq(c->n_cloud_init, b->n_cloud_init);
	for (size_t i = 0; i < b->n_cloud_init; i++)
		ck_assert_str_eq(c->cloud_init[i].yaml, b->cloud_init[i].yaml);
	ib_project_free(q);
	ib_project_free(p);
}
END_TEST

/* The rejections named in spec.h, each with its exact message. */

START_TEST(test_err_unknown_key)
{
	expect_role_error(
	        "  name: base\n"
	        "  description: x\n"
	        "\n"
	        "  pakages: [curl]\n",
	        "images/base.yaml:4:3: unknown key 'pakages' in role (expected one of: name, "
	        "description, abstract, extends, packages, files, units, firstboot, cloud_init, "
	        "disk, artifacts, images, checks, vars, base, scripts)");
}
END_TEST

START_TEST(test_err_wrong_type)
{
	expect_role_error(
	        "name: base\n"
	        "description: x\n"
	        "abstract: false\n"
	        "# packages below\n"
	        "packages: {curl: 1}\n",
	        "images/base.yaml:5:11: 'packages' must be a sequence of strings, not a mapping");
}
END_TEST

START_TEST(test_err_wrong_item_type)
{
	expect_role_error(
	        "packages:\n"
	        "  - curl\n"
	        "  - [vim]\n",
	        "images/base.yaml:3:5: items of 'packages' must be strings, not a sequence");
}
END_TEST

START_TEST(test_err_missing_destination)
{
	tu_write("files/a", "a\n");
	expect_role_error("description: x\n"
	                  "files:\n"
	                  "  - source: files/a\n"
	                  "    destination: /a\n"
	                  "  - source: files/a\n"
	                  "    destination: /b\n"
	                  "  - source: files/a\n"
	                  "    mode: \"0644\"\n",
	                  "images/base.yaml:7:5: missing required key 'destination' in file entry");
}
END_TEST

START_TEST(test_err_project_missing_debian)
{
	tu_write("imgbuild.yaml", "project: x\n");
	ck_assert_int_eq(mkdir("images", 0755), 0);
	expect_error("imgbuild.yaml:1:1: missing required key 'debian'");
}
END_TEST

START_TEST(test_err_project_values)
{
	static const struct {
		const char *yaml, *want;
	} cases[] = {
	        {"project: Quode\ndebian: {suite: bookworm, mirror: http://m}\n",
	         "imgbuild.yaml:1:10: invalid project name 'Quode' (expected lowercase letters, "
	         "digits and "
	         "'-', starting with a letter or digit)"},
	        {"project: q\ndebian: {suite: bookworm, mirror: ftp://m}\n",
	         "imgbuild.yaml:2:35: invalid mirror 'ftp://m' (expected an http://, https:// or "
	         "file:// URL)"},
	        {"project: q\ndebian: {suite: bookworm, mirror: http://m, architecture: arm64}\n",
	         "imgbuild.yaml:2:59: unsupported architecture 'arm64' (only amd64 is supported)"},
	        {"project: q\ndebian: {suite: bookworm, mirror: http://m, variant: fat}\n",
	         "imgbuild.yaml:2:54: unknown variant 'fat' (expected one of: minbase, apt, "
	         "essential, "
	         "required, important, standard)"},
	        {"project: q\ndebian: {suite: bookworm}\n",
	         "imgbuild.yaml:2:9: missing required key 'mirror' in 'debian'"},
	        {"project: q\ndebian: {suite: --foo, mirror: http://m}\n",
	         "imgbuild.yaml:2:17: invalid suite '--foo'"},
	        {"project: q\ndebian: bookworm\n",
	         "imgbuild.yaml:2:9: 'debian' must be a mapping, not a string"},
	        {"project: q\ndebian: {suite: bookworm, mirror: http://m}\noutput: {formats: [raw, "
	         "raw]}\n",
	         "imgbuild.yaml:3:25: duplicate format 'raw'"},
	        {"project: q\ndebian: {suite: bookworm, mirror: http://m}\noutput: {formats: []}\n",
	         "imgbuild.yaml:3:19: 'formats' must not be empty"},
	        {"project: q\ndebian: {suite: bookworm, mirror: http://m}\noutput: {formats: "
	         "[vmdk]}\n",
	         "imgbuild.yaml:3:20: unknown format 'vmdk' (expected raw or qcow2)"},
	        {"project: q\ndebian: {suite: bookworm, mirror: http://m}\noutput: {dir: out, fmt: "
	         "x}\n",
	         "imgbuild.yaml:3:20: unknown key 'fmt' in 'output' (expected one of: dir, "
	         "formats)"},
	        {"project: q\ndebian: {suite: bookworm, mirror: http://m}\ndisk: {size: 512M}\n",
	         "imgbuild.yaml:3:14: disk size '512M' is out of range (1G to 2T)"},
	        {"project: q\ndebian: {suite: bookworm, mirror: http://m}\ndisk: {size: 3T}\n",
	         "imgbuild.yaml:3:14: disk size '3T' is out of range (1G to 2T)"},
	        {"project: q\ndebian: {suite: bookworm, mirror: http://m}\ndisk: {size: lots}\n",
	         "imgbuild.yaml:3:14: invalid size 'lots' (expected a number with an optional K, "
	         "M, G or T "
	         "suffix)"},
	        {"project: q\ndebian: {suite: bookworm, mirror: http://m}\nrelease: 1\n",
	         "imgbuild.yaml:3:1: unknown key 'release' (expected one of: project, debian, "
	         "output, disk)"},
	        {"project:\ndebian: {suite: bookworm, mirror: http://m}\n",
	         "imgbuild.yaml:1:9: 'project' must be a string, not null"},
	        {"- project\n",
	         "imgbuild.yaml:1:1: project file must be a mapping, not a sequence"},
	        {"# nothing\n", "imgbuild.yaml:1:1: empty project file"},
	};
	ck_assert_int_eq(mkdir("images", 0755), 0);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		tu_write("imgbuild.yaml", cases[i].yaml);
		expect_error(cases[i].want);
	}
}
END_TEST

START_TEST(test_err_duplicate_key)
{
	expect_role_error("packages: [a1]\n"
	                  "description: x\n"
	                  "packages: [b1]\n",
	                  "images/base.yaml:3:1: duplicate key 'packages'");
	/* Also deep inside free-form cloud_init data, and in the project file. */
	tu_write("images/base.yaml", "cloud_init:\n"
	                             "  users:\n"
	                             "    - {name: a, shell: /bin/sh, name: b}\n");
	expect_error("images/base.yaml:3:33: duplicate key 'name'");
	tu_write("imgbuild.yaml", "project: a\nproject: b\n");
	expect_error("imgbuild.yaml:2:1: duplicate key 'project'");
}
END_TEST

START_TEST(test_err_duplicate_role)
{
	setup_project();
	tu_write("images/base.yaml", "description: one\n");
	tu_write("images/other.yaml", "description: two\n"
	                              "name: base\n");
	expect_error("images/other.yaml:2:7: duplicate role 'base' (first defined at "
	             "images/base.yaml:1:1)");
}
END_TEST

START_TEST(test_err_extends_unknown)
{
	setup_project();
	tu_write("images/base.yaml", "description: one\n");
	tu_write("images/master.yaml", "description: two\n"
	                               "extends:   bsae\n");
	expect_error("images/master.yaml:2:12: role 'master' extends unknown role 'bsae'");
}
END_TEST

START_TEST(test_err_extends_cycle)
{
	setup_project();
	tu_write("images/a.yaml", "description: a\n"
	                          "extends: b\n");
	tu_write("images/b.yaml", "extends: a\n");
	tu_write("images/c.yaml", "extends: a\n");
	expect_error("images/a.yaml:2:10: role 'a' extends itself: a -> b -> a");

	tu_write("images/b.yaml", "extends: b\n");
	tu_write("images/a.yaml", "extends: b\n");
	expect_error("images/b.yaml:1:10: role 'b' extends itself: b -> b");
}
END_TEST

START_TEST(test_err_path_escapes)
{
	tu_write("files/ok", "ok\n");
	expect_role_error(
	        "description: x\n"
	        "files:\n"
	        "  - source: files/ok\n"
	        "    destination: /ok\n"
	        "  - source: files/ok\n"
	        "    destination: /ok2\n"
	        "    mode: \"0600\"\n"
	        "  - destination: /etc/shadow-copy\n"
	        "    source: ../etc/passwd\n",
	        "images/base.yaml:9:13: path '../etc/passwd' escapes the project directory");
	/* ".." that would come back inside is refused as well: the rule is lexical. */
	tu_write("images/base.yaml", "files:\n"
	                             "  - source: files/../files/ok\n"
	                             "    destination: /ok\n");
	expect_error(
	        "images/base.yaml:2:13: path 'files/../files/ok' escapes the project directory");
	tu_write("images/base.yaml", "firstboot: [/etc/passwd]\n");
	expect_error("images/base.yaml:1:13: path '/etc/passwd' escapes the project directory");
	tu_write("images/base.yaml", "firstboot: [../x.sh]\n");
	expect_error("images/base.yaml:1:13: path '../x.sh' escapes the project directory");
}
END_TEST

START_TEST(test_err_symlink_escapes)
{
	ck_assert_int_eq(symlink("/etc", "etc-link"), 0);
	ck_assert_int_eq(symlink("/etc/hostname", "host-link"), 0);
	expect_role_error("files:\n"
	                  "  - source: etc-link\n"
	                  "    destination: /etc2\n",
	                  "images/base.yaml:2:13: path 'etc-link' escapes the project directory");
	tu_write("images/base.yaml", "firstboot:\n"
	                             "  - host-link\n");
	expect_error("images/base.yaml:2:5: path 'host-link' escapes the project directory");
}
END_TEST

START_TEST(test_absolute_path_inside)
{
	setup_project();
	tu_write("scripts/run.sh", "#!/bin/sh\n");
	ck_assert_int_eq(symlink("scripts/run.sh", "run-link.sh"), 0);
	_cleanup_free_ char *abs = here("scripts/run.sh");
	_cleanup_free_ char *yaml = xasprintf("firstboot: ['%s', run-link.sh]\n", abs);
	tu_write("images/base.yaml", yaml);
	struct ib_project *p = load_ok();
	ck_assert_str_eq(p->roles[0].firstboot.v[0], abs);
	ib_project_free(p);
}
END_TEST

START_TEST(test_err_missing_source)
{
	expect_role_error("files:\n"
	                  "  - source: files/x\n"
	                  "    destination: /x\n",
	                  "images/base.yaml:2:13: source 'files/x' does not exist");
	tu_write("images/base.yaml", "firstboot: [scripts/gone.sh]\n");
	expect_error("images/base.yaml:1:13: firstboot script 'scripts/gone.sh' does not exist");
	ck_assert_int_eq(mkdir("scripts", 0755), 0);
	tu_write("images/base.yaml", "firstboot: [scripts]\n");
	expect_error("images/base.yaml:1:13: firstboot script 'scripts' is not a regular file");
}
END_TEST

START_TEST(test_err_destination)
{
	static const struct {
		const char *dest, *want;
	} cases[] = {
	        {"etc/x", "images/base.yaml:3:18: destination 'etc/x' must be an absolute path"},
	        {"/etc/../x",
	         "images/base.yaml:3:18: destination '/etc/../x' must not contain '..'"},
	        {"/", "images/base.yaml:3:18: destination '/' is the root directory"},
	        {"//./", "images/base.yaml:3:18: destination '//./' is the root directory"},
	};
	setup_project();
	tu_write("files/a", "a\n");
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *y = xasprintf("files:\n"
		                                   "  - source: files/a\n"
		                                   "    destination: %s\n",
		                                   cases[i].dest);
		tu_write("images/base.yaml", y);
		expect_error(cases[i].want);
	}
	tu_write("images/base.yaml", "files:\n"
	                             "  - {source: files/a, destination: /x}\n"
	                             "  - {source: files/a, destination: /x/}\n");
	expect_error("images/base.yaml:3:36: duplicate destination '/x' (first at line 2)");
}
END_TEST

START_TEST(test_err_mode_owner)
{
	static const struct {
		const char *line, *want;
	} cases[] = {
	        {"mode: 0999",
	         "images/base.yaml:4:11: invalid mode '0999' (expected octal digits no "
	         "larger than 07777, such as \"0644\")"},
	        {"mode: \"010000\"",
	         "images/base.yaml:4:11: invalid mode '010000' (expected octal digits "
	         "no larger than 07777, such as \"0644\")"},
	        {"mode: rwx",
	         "images/base.yaml:4:11: invalid mode 'rwx' (expected octal digits no larger "
	         "than 07777, such as \"0644\")"},
	        {"mode: [7]",
	         "images/base.yaml:4:11: 'mode' must be octal digits such as \"0644\", not a "
	         "sequence"},
	        {"owner: admin:root", "images/base.yaml:4:12: invalid owner 'admin:root' (expected "
	                              "'user:group', each 'root' or a numeric id)"},
	        {"owner: \"2147483648:0\"",
	         "images/base.yaml:4:12: invalid owner '2147483648:0' (expected "
	         "'user:group', each 'root' or a numeric id)"},
	        {"owner: root",
	         "images/base.yaml:4:12: invalid owner 'root' (expected 'user:group', each "
	         "'root' or a numeric id)"},
	};
	setup_project();
	tu_write("files/a", "a\n");
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *y = xasprintf("files:\n"
		                                   "  - source: files/a\n"
		                                   "    destination: /a\n"
		                                   "    %s\n",
		                                   cases[i].line);
		tu_write("images/base.yaml", y);
		expect_error(cases[i].want);
	}
	tu_write("images/base.yaml", "files:\n"
	                             "  - source: files/a\n"
	                             "    destination: /a\n"
	                             "    owner: \"2147483647:root\"\n"
	                             "    mode: 07777\n");
	struct ib_project *p = load_ok();
	ck_assert_uint_eq(p->roles[0].files[0].uid, 2147483647u);
	ck_assert_uint_eq(p->roles[0].files[0].gid, 0);
	ck_assert_uint_eq(p->roles[0].files[0].mode, 07777);
	ib_project_free(p);
}
END_TEST

START_TEST(test_err_package_and_unit_names)
{
	expect_role_error(
	        "packages: [curl, -oops]\n",
	        "images/base.yaml:1:18: invalid package '-oops' (expected a Debian package name, "
	        "optionally with =version)");
	tu_write("images/base.yaml", "packages: [curl=]\n");
	expect_error(
	        "images/base.yaml:1:12: invalid package 'curl=' (expected a Debian package name, "
	        "optionally with =version)");
	tu_write("images/base.yaml", "units:\n  enable: [ssh.service, ssh]\n");
	expect_error(
	        "images/base.yaml:2:25: invalid unit name 'ssh' (expected a .service, .socket, "
	        ".timer, .target, .path or .mount unit)");
	tu_write("images/base.yaml", "units:\n  enable: ['a b.service']\n");
	expect_error("images/base.yaml:2:12: invalid unit name 'a b.service' (expected a .service, "
	             ".socket, .timer, .target, .path or .mount unit)");
	tu_write("images/base.yaml", "units:\n  disable: [ssh.service]\n");
	expect_error(
	        "images/base.yaml:2:3: unknown key 'disable' in 'units' (expected one of: enable)");
	tu_write("images/base.yaml", "units: [ssh.service]\n");
	expect_error("images/base.yaml:1:8: 'units' must be a mapping, not a sequence");
}
END_TEST

START_TEST(test_err_bool)
{
	expect_role_error("abstract: maybe\n",
	                  "images/base.yaml:1:11: 'abstract' must be true or false, not 'maybe'");
	tu_write("images/base.yaml", "abstract: \"true\"\n");
	expect_error("images/base.yaml:1:11: 'abstract' must be true or false, not 'true'");
	tu_write("images/base.yaml", "abstract: 1\n");
	expect_error("images/base.yaml:1:11: 'abstract' must be true or false, not '1'");
	tu_write("images/base.yaml", "abstract: {}\n");
	expect_error("images/base.yaml:1:11: 'abstract' must be true or false, not a mapping");
	tu_write("images/base.yaml", "abstract: yes\n");
	struct ib_project *p = load_ok();
	ck_assert_int_eq(p->roles[0].abstract, 1);
	ib_project_free(p);
}
END_TEST

START_TEST(test_err_role_disk)
{
	expect_role_error("disk:\n  size: 2049G\n",
	                  "images/base.yaml:2:9: disk size '2049G' is out of range (1G to 2T)");
	tu_write("images/base.yaml", "disk: {}\n");
	expect_error("images/base.yaml:1:7: missing required key 'size' in 'disk'");
	tu_write("images/base.yaml", "disk:\n  size: 2T\n");
	struct ib_project *p = load_ok();
	ck_assert_uint_eq(p->roles[0].disk_size, UINT64_C(2) << 40);
	ib_project_free(p);
}
END_TEST

START_TEST(test_err_role_names)
{
	setup_project();
	tu_write("images/Base.yaml", "description: x\n");
	expect_error(
	        "images/Base.yaml:1:1: invalid role name 'Base' taken from the file name (expected "
	        "lowercase letters, digits and '-', at most 63 characters)");
	unlink("images/Base.yaml");
	tu_write("images/base.yaml", "name: -base\n");
	expect_error("images/base.yaml:1:7: invalid role name '-base' (expected lowercase letters, "
	             "digits and '-', at most 63 characters)");
	tu_write("images/base.yaml",
	         "name: a234567890123456789012345678901234567890123456789012345678901234\n");
	expect_error_like("images/base.yaml:1:7: invalid role name", "at most 63");
	tu_write("images/base.yaml",
	         "name: a23456789012345678901234567890123456789012345678901234567890123\n");
	struct ib_project *p = load_ok();
	ib_project_free(p);
}
END_TEST

START_TEST(test_err_structure)
{
	expect_role_error(
	        "files: {source: x}\n",
	        "images/base.yaml:1:8: 'files' must be a sequence of mappings, not a mapping");
	tu_write("images/base.yaml", "files:\n  - files/a\n");
	expect_error("images/base.yaml:2:5: file entry must be a mapping, not a string");
	tu_write("images/base.yaml", "files:\n  - {source: x, destination: /x, group: y}\n");
	expect_error("images/base.yaml:2:34: unknown key 'group' in file entry (expected one of: "
	             "source, destination, mode, owner, template)");
	tu_write("images/base.yaml", "cloud_init: [a]\n");
	expect_error("images/base.yaml:1:13: 'cloud_init' must be a mapping, not a sequence");
	tu_write("images/base.yaml", "cloud_init:\n  1: x\n");
	expect_error("images/base.yaml:2:3: cloud_init keys must be strings, not a number");
	tu_write("images/base.yaml", "description:\n");
	expect_error("images/base.yaml:1:13: 'description' must be a string, not null");
	tu_write("images/base.yaml", "description: \"a\\0b\"\n");
	expect_error("images/base.yaml:1:14: 'description' must not contain NUL characters");
	tu_write("images/base.yaml", "\"packages\\0x\": [a1]\n");
	expect_error("images/base.yaml:1:1: mapping keys must not contain NUL characters");
	tu_write("images/base.yaml", "packages: [\"a1\\0\"]\n");
	expect_error("images/base.yaml:1:12: items of 'packages' must not contain NUL characters");
	tu_write("images/base.yaml", "[a, b]\n");
	expect_error("images/base.yaml:1:1: role file must be a mapping, not a sequence");
	tu_write("images/base.yaml", "extends: [a]\n");
	expect_error("images/base.yaml:1:10: 'extends' must be a string, not a sequence");
	tu_write("images/base.yaml", "? [a]\n: b\n");
	expect_error("images/base.yaml:1:3: mapping keys must be scalars");
}
END_TEST

START_TEST(test_err_empty_role)
{
	expect_role_error("", "images/base.yaml:1:1: empty role file");
	tu_write("images/base.yaml", "# just a comment\n\n");
	expect_error("images/base.yaml:1:1: empty role file");
	tu_write("images/base.yaml", "---\n");
	expect_error("images/base.yaml:1:1: empty role file");
}
END_TEST

START_TEST(test_err_syntax)
{
	expect_role_error(
	        "packages: [curl\n"
	        "description: x\n",
	        "images/base.yaml:2:12: did not find expected ',' or ']' (while parsing a flow "
	        "sequence at 1:11)");
	tu_write("images/base.yaml", "a: b\n  c: d\n");
	expect_error_like("images/base.yaml:2:4: ", "mapping values are not allowed");
	/* Invalid UTF-8 is a reader error, positioned from its byte offset. */
	tu_write("images/base.yaml", "description: ok\ndescription2: \xff\n");
	expect_error_like("images/base.yaml:2:15: ", "invalid");
}
END_TEST

START_TEST(test_err_multiple_documents)
{
	expect_role_error("description: one\n"
	                  "---\n"
	                  "description: two\n",
	                  "images/base.yaml:2:1: more than one document in file");
}
END_TEST

START_TEST(test_err_aliases)
{
	expect_role_error("description: &d text\n",
	                  "images/base.yaml:1:14: anchors and aliases are not supported");
	tu_write("images/base.yaml", "cloud_init:\n"
	                             "  a: [x, y]\n"
	                             "  b: *a\n");
	expect_error("images/base.yaml:3:6: anchors and aliases are not supported");
	/* A billion-laughs file fails at its first anchor, long before anything expands. */
	tu_write("images/base.yaml", "cloud_init:\n"
	                             "  a: &a [x, x, x, x, x, x, x, x, x]\n"
	                             "  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n");
	expect_error("images/base.yaml:2:6: anchors and aliases are not supported");
}
END_TEST

START_TEST(test_err_nesting)
{
	struct strbuf sb = STRBUF_INIT;
	sb_adds(&sb, "cloud_init:\n  deep: ");
	for (int i = 0; i < 62; i++)
		sb_addc(&sb, '[');
	for (int i = 0; i < 62; i++)
		sb_addc(&sb, ']');
	sb_addc(&sb, '\n');
	setup_project();
	/* 64 levels: the role mapping, cloud_init's mapping and 62 sequences. */
	tu_write("images/base.yaml", sb_str(&sb));
	struct ib_project *p = load_ok();
	ib_project_free(p);

	sb_reset(&sb);
	sb_adds(&sb, "cloud_init:\n  deep: ");
	for (int i = 0; i < 10000; i++)
		sb_addc(&sb, '[');
	sb_addc(&sb, '\n');
	tu_write("images/base.yaml", sb_str(&sb));
	sb_release(&sb);
	expect_error("images/base.yaml:2:71: nesting deeper than 64 levels");
}
END_TEST

START_TEST(test_err_too_large)
{
	setup_project();
	struct strbuf sb = STRBUF_INIT;
	sb_adds(&sb, "description: >\n");
	while (sb.len <= IB_SPEC_MAX_FILE)
		sb_adds(&sb, "  filler filler filler filler filler filler filler filler\n");
	tu_write("images/base.yaml", sb_str(&sb));
	sb_release(&sb);
	expect_error("images/base.yaml: file is larger than 1048576 bytes");
}
END_TEST

START_TEST(test_err_tags)
{
	expect_role_error("description: !secret hunter2\n",
	                  "images/base.yaml:1:14: unsupported tag '!secret'");
	tu_write("images/base.yaml", "cloud_init:\n  blob: !!binary aGk=\n");
	expect_error("images/base.yaml:2:9: unsupported tag 'tag:yaml.org,2002:binary'");
	tu_write("images/base.yaml", "description: !!str 42\nabstract: !!bool true\n");
	struct ib_project *p = load_ok();
	ck_assert_str_eq(p->roles[0].description, "42");
	ck_assert_int_eq(p->roles[0].abstract, 1);
	ib_project_free(p);
}
END_TEST

START_TEST(test_err_missing_images_dir)
{
	tu_write("imgbuild.yaml", project_yaml);
	expect_error("imgbuild.yaml: the project has no 'images' directory for role files");
}
END_TEST

START_TEST(test_err_no_project_file)
{
	ck_assert_int_eq(mkdir("images", 0755), 0);
	_cleanup_free_ char *want = xasprintf("no imgbuild.yaml in '.'");
	expect_error(want);
}
END_TEST

START_TEST(test_error_stops_at_first_file)
{
	/* Files load in name order; the first bad one is reported. */
	setup_project();
	tu_write("images/a.yaml", "descripton: x\n");
	tu_write("images/b.yaml", "packages: {}\n");
	expect_error(
	        "images/a.yaml:1:1: unknown key 'descripton' in role (expected one of: name, "
	        "description, abstract, extends, packages, files, units, firstboot, cloud_init, "
	        "disk, artifacts, images, checks, vars, base, scripts)");
}
END_TEST


static const char sha_a[] = "1111111111111111111111111111111111111111111111111111111111111111";

START_TEST(test_artifacts_and_images)
{
	setup_project();
	tu_write("images/base.yaml",
	         "artifacts:\n"
	         "  - name: kubeadm\n"
	         "    url: https://dl.k8s.io/release/v1.30.2/bin/linux/amd64/kubeadm\n"
	         "    checksum_url: https://dl.k8s.io/release/v1.30.2/bin/linux/amd64/kubeadm.sha256\n"
	         "    destination: /usr/bin/kubeadm\n"
	         "    mode: \"0755\"\n"
	         "  - name: cni\n"
	         "    url: http://127.0.0.1:8080/cni.tgz\n"
	         "    sha256: 1111111111111111111111111111111111111111111111111111111111111111\n"
	         "    extract:\n"
	         "      - member: ./bridge\n"
	         "        destination: /opt/cni/bin/bridge\n"
	         "        mode: \"0755\"\n"
	         "      - member: loopback\n"
	         "        destination: /opt/cni/bin/loopback\n"
	         "images:\n"
	         "  - registry.k8s.io/pause:3.9\n"
	         "  - docker.io/library/busybox@sha256:"
	         "2222222222222222222222222222222222222222222222222222222222222222\n");
	tu_write("images/worker.yaml",
	         "extends: base\n"
	         "artifacts:\n"
	         "  - name: kubeadm\n"
	         "    url: file:///srv/mirror/kubeadm\n"
	         "    sha256: 1111111111111111111111111111111111111111111111111111111111111111\n"
	         "    destination: /usr/local/bin/kubeadm\n"
	         "images: [registry.k8s.io/pause:3.9, registry.k8s.io/kube-proxy:v1.30.2]\n");
	struct ib_project *p = load_ok();
	const struct ib_role *b = ib_project_find_role(p, "base");
	ck_assert_uint_eq(b->n_artifacts, 2);
	ck_assert_str_eq(b->artifacts[0].name, "kubeadm");
	ck_assert_ptr_null(b->artifacts[0].sha256);
	ck_assert_str_eq(b->artifacts[0].dest, "/usr/bin/kubeadm");
	ck_assert_uint_eq(b->artifacts[0].mode, 0755);
	ck_assert_str_eq(b->artifacts[1].sha256, sha_a);
	ck_assert_uint_eq(b->artifacts[1].n_extract, 2);
	ck_assert_str_eq(b->artifacts[1].extract[0].member, "bridge");
	ck_assert_uint_eq(b->artifacts[1].extract[0].mode, 0755);
	ck_assert_int_eq(b->artifacts[1].extract[1].has_mode, 0);

	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_resolved *r = NULL;
	ck_assert_int_eq(ib_role_resolve(&ctx, p, "worker", &r), 0);
	ck_assert_uint_eq(r->n_artifacts, 2);
	ck_assert_str_eq(r->artifacts[0]->name, "kubeadm"); /* replaced in place */
	ck_assert_str_eq(r->artifacts[0]->dest, "/usr/local/bin/kubeadm");
	ck_assert_str_eq(r->artifacts[1]->name, "cni");
	ck_assert_uint_eq(r->images.n, 3);
	ck_assert_str_eq(r->images.v[0], "docker.io/library/busybox@sha256:"
	                                 "2222222222222222222222222222222222222222222222222222222222222222");
	ck_assert_str_eq(r->images.v[2], "registry.k8s.io/pause:3.9");
	ib_resolved_free(r);
	ib_project_free(p);
}
END_TEST

START_TEST(test_artifact_errors)
{
	expect_role_error("artifacts:\n  - name: a\n    url: ftp://x/y\n    sha256: x\n"
	                  "    destination: /a\n",
	                  "images/base.yaml:3:10: invalid url 'ftp://x/y' (expected an http://, "
	                  "https:// or file:// URL)");
}
END_TEST

START_TEST(test_artifact_errors_sha)
{
	expect_role_error("artifacts:\n  - name: a\n    url: http://x/y\n    sha256: ABC\n"
	                  "    destination: /a\n",
	                  "images/base.yaml:4:13: invalid sha256 'ABC' (expected 64 lowercase hex "
	                  "digits)");
}
END_TEST

START_TEST(test_artifact_errors_pin)
{
	expect_role_error("artifacts:\n  - name: a\n    url: http://x/y\n    destination: /a\n",
	                  "images/base.yaml:2:5: artifact 'a' needs exactly one of 'sha256' and "
	                  "'checksum_url'");
}
END_TEST

START_TEST(test_artifact_errors_dest)
{
	expect_role_error("artifacts:\n  - name: a\n    url: http://x/y\n    sha256: "
	                  "1111111111111111111111111111111111111111111111111111111111111111\n",
	                  "images/base.yaml:2:5: artifact 'a' needs exactly one of 'destination' "
	                  "and 'extract'");
}
END_TEST

START_TEST(test_artifact_errors_member)
{
	expect_role_error("artifacts:\n  - name: a\n    url: http://x/y\n    sha256: "
	                  "1111111111111111111111111111111111111111111111111111111111111111\n"
	                  "    extract:\n      - member: ../etc/passwd\n        destination: /x\n",
	                  "images/base.yaml:6:17: invalid member '../etc/passwd'");
}
END_TEST

START_TEST(test_image_errors)
{
	expect_role_error("images: [nginx]\n",
	                  "images/base.yaml:1:10: invalid image reference 'nginx' (expected "
	                  "name:tag, name@sha256:<64 hex> or both)");
}
END_TEST

START_TEST(test_image_errors_digest)
{
	expect_role_error("images: [\"nginx@sha256:abc\"]\n",
	                  "images/base.yaml:1:10: invalid image reference 'nginx@sha256:abc' "
	                  "(expected name:tag, name@sha256:<64 hex> or both)");
}
END_TEST

START_TEST(test_checks)
{
	setup_project();
	tu_write("images/base.yaml",
	         "checks:\n"
	         "  files:\n"
	         "    - path: /etc/ssh/sshd_config.d/50-imgbuild.conf\n"
	         "      mode: \"0644\"\n"
	         "      owner: root:root\n"
	         "      sha256: 1111111111111111111111111111111111111111111111111111111111111111\n"
	         "    - path: /usr/local/sbin/imgbuild-firstboot\n"
	         "  units: [ssh.service]\n"
	         "  sysctl:\n"
	         "    net.ipv4.ip_forward: 1\n"
	         "  packages:\n"
	         "    openssh-server: \"*\"\n"
	         "    cloud-init: 22.4.2-1+deb12u1\n");
	tu_write("images/worker.yaml", "extends: base\nchecks:\n  units: [kubelet.service]\n");
	struct ib_project *p = load_ok();
	const struct ib_checks *c = &ib_project_find_role(p, "base")->checks;
	ck_assert_uint_eq(c->n_files, 2);
	ck_assert_str_eq(c->files[0].path, "/etc/ssh/sshd_config.d/50-imgbuild.conf");
	ck_assert_int_eq(c->files[0].has_mode, 1);
	ck_assert_uint_eq(c->files[0].mode, 0644);
	ck_assert_int_eq(c->files[0].has_owner, 1);
	ck_assert_str_eq(c->files[0].sha256, sha_a);
	ck_assert_ptr_null(c->files[1].sha256);
	ck_assert_int_eq(c->files[1].has_mode, 0);
	ck_assert_str_eq(c->units.v[0], "ssh.service");
	ck_assert_uint_eq(c->n_sysctls, 1);
	ck_assert_str_eq(c->sysctls[0].name, "net.ipv4.ip_forward");
	ck_assert_str_eq(c->sysctls[0].value, "1");
	ck_assert_uint_eq(c->n_packages, 2);
	ck_assert_str_eq(c->packages[1].value, "22.4.2-1+deb12u1");
	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_resolved *r = NULL;
	ck_assert_int_eq(ib_role_resolve(&ctx, p, "worker", &r), 0);
	ck_assert_uint_eq(r->n_checks, 2);
	ck_assert_uint_eq(r->checks[0]->n_files, 2);
	ck_assert_str_eq(r->checks[1]->units.v[0], "kubelet.service");
	ib_resolved_free(r);
	ib_project_free(p);
}
END_TEST

START_TEST(test_checks_errors)
{
	expect_role_error("checks:\n  sysctl:\n    net.ipv4.ip_forward: [1]\n",
	                  "images/base.yaml:3:26: the value of sysctl 'net.ipv4.ip_forward' must be "
	                  "a scalar, not a sequence");
}
END_TEST


/* vars: inherited along extends (a descendant's value wins), "role" set by imgbuild,
 * scalars of any YAML type kept as written, and templated files checked at resolve. */
START_TEST(test_vars_and_templates)
{
	setup_project();
	tu_write("files/k.env", "V={{ version }} R={{role}} N={{ replicas }}\n");
	tu_write("images/base.yaml", "abstract: true\n"
	                             "vars:\n"
	                             "  version: v1.0\n"
	                             "  replicas: 2\n"
	                             "files:\n"
	                             "  - source: files/k.env\n"
	                             "    destination: /etc/k.env\n"
	                             "    template: true\n");
	tu_write("images/node.yaml", "extends: base\nvars:\n  version: v1.1\n  extra: \"yes\"\n");
	struct ib_project *p = load_ok();
	struct ib_ctx ctx;
	struct ib_resolved *r = NULL;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_role_resolve(&ctx, p, "node", &r), 0);
	ck_assert_uint_eq(r->n_vars, 4);
	const char *want[][2] = {{"extra", "yes"}, {"replicas", "2"}, {"role", "node"},
	                         {"version", "v1.1"}};
	for (size_t i = 0; i < 4; i++) {
		ck_assert_str_eq(r->vars[i].name, want[i][0]);
		ck_assert_str_eq(r->vars[i].value, want[i][1]);
	}
	ck_assert_int_eq(r->files[0]->template, 1);
	ib_resolved_free(r);
	ib_project_free(p);
}
END_TEST

START_TEST(test_vars_errors)
{
	expect_role_error("vars: [a]\n",
	                  "images/base.yaml:1:7: 'vars' must be a mapping, not a sequence");
	expect_role_error_again("vars:\n  9lives: x\n",
	                  "images/base.yaml:2:3: invalid variable name '9lives' (expected a "
	                  "letter, then letters, digits and '_')");
	expect_role_error_again("vars:\n  role: x\n",
	                  "images/base.yaml:2:3: variable 'role' is set by imgbuild (the "
	                  "role's name)");
	expect_role_error_again("vars:\n  a: {b: c}\n",
	                  "images/base.yaml:2:6: variable 'a' must be a string, number or "
	                  "boolean, not a mapping");
	expect_role_error_again("vars:\n  a: ~\n",
	                  "images/base.yaml:2:6: variable 'a' must be a string, number or "
	                  "boolean, not null");
	expect_role_error_again("vars:\n  a: \"x\\ny\"\n",
	                  "images/base.yaml:2:6: variable 'a' must be one line: templates are "
	                  "line based");
	tu_write("files/d/x", "x\n");
	expect_role_error_again("files:\n  - source: files/d\n    destination: /etc/d\n"
	                  "    template: true\n",
	                  "images/base.yaml:4:15: 'template' applies to a regular file, and "
	                  "'files/d' is a directory");
}
END_TEST

/* A placeholder without a value is found when the role is resolved (validate), and named
 * by the template's own file:line:column. */
START_TEST(test_template_unknown_var)
{
	setup_project();
	tu_write("files/t.conf", "a = 1\nb = {{ version }}\nc = {{ nope }}\n");
	tu_write("images/base.yaml", "vars: {version: v1}\n"
	                             "files:\n"
	                             "  - source: files/t.conf\n"
	                             "    destination: /etc/t.conf\n"
	                             "    template: yes\n");
	struct ib_project *p = load_ok();
	struct ib_ctx ctx;
	struct ib_resolved *r = (struct ib_resolved *)&sentinel;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_role_resolve(&ctx, p, "base", &r), -IB_E_SPEC);
	ck_assert_ptr_eq(r, (struct ib_resolved *)&sentinel);
	ck_assert_str_eq(ctx.err, "files/t.conf:3:5: unknown template variable 'nope'");
	ib_project_free(p);
}
END_TEST

#define SHA_B "3333333333333333333333333333333333333333333333333333333333333333"

/* base: image: parsed, inherited by a descendant, with scripts from the chain in order. */
START_TEST(test_base_image)
{
	setup_project();
	tu_write("s/one.sh", "#!/bin/sh\n");
	tu_write("s/two.sh", "#!/bin/sh\n");
	tu_write("images/cloud.yaml", "base:\n"
	                              "  image:\n"
	                              "    url: http://127.0.0.1:8080/debian.qcow2\n"
	                              "    sha256: " SHA_B "\n"
	                              "    format: qcow2\n"
	                              "packages: [hello]\n"
	                              "scripts: [s/one.sh]\n");
	tu_write("images/child.yaml", "extends: cloud\nscripts: [s/two.sh, s/one.sh]\n");
	tu_write("images/plain.yaml", "packages: [hello]\n");
	struct ib_project *p = load_ok();
	const struct ib_role *c = ib_project_find_role(p, "cloud");
	ck_assert_ptr_nonnull(c->base_image);
	ck_assert_str_eq(c->base_image->url, "http://127.0.0.1:8080/debian.qcow2");
	ck_assert_str_eq(c->base_image->sha256, SHA_B);
	ck_assert_uint_eq(c->base_image->format, IB_FMT_QCOW2);
	ck_assert_int_eq(c->base_image->pos.line, 3);

	struct ib_ctx ctx;
	ib_ctx_init(&ctx);
	struct ib_resolved *r = NULL;
	ck_assert_int_eq(ib_role_resolve(&ctx, p, "child", &r), 0);
	ck_assert_ptr_eq(r->base_image, c->base_image);
	ck_assert_uint_eq(r->scripts.n, 2);
	ck_assert(endswith(r->scripts.v[0], "/s/one.sh"));
	ck_assert(endswith(r->scripts.v[1], "/s/two.sh"));
	ib_resolved_free(r);
	ck_assert_int_eq(ib_role_resolve(&ctx, p, "plain", &r), 0);
	ck_assert_ptr_null(r->base_image);
	ib_resolved_free(r);
	ib_project_free(p);
}
END_TEST

START_TEST(test_base_image_errors)
{
	expect_role_error("base: image\n", "images/base.yaml:1:7: 'base' must be a mapping, not a string");
	expect_role_error_again("base: {}\n",
	                        "images/base.yaml:1:7: missing required key 'image' in 'base'");
	expect_role_error_again("base:\n  image: {url: http://x/y, sha256: " SHA_B ", format: raw}\n"
	                        "  bootstrap: {}\n",
	                        "images/base.yaml:3:3: unknown key 'bootstrap' in 'base' (expected one "
	                        "of: image)");
	expect_role_error_again("base:\n  image: {url: http://x/y, format: raw}\n",
	                        "images/base.yaml:2:10: missing required key 'sha256' in 'image'");
	expect_role_error_again("base:\n  image: {url: http://x/y, sha256: " SHA_B "}\n",
	                        "images/base.yaml:2:10: missing required key 'format' in 'image'");
	expect_role_error_again("base:\n  image: {sha256: " SHA_B ", format: raw}\n",
	                        "images/base.yaml:2:10: missing required key 'url' in 'image'");
	expect_role_error_again("base:\n  image: {url: http://x/y, sha256: ABC, format: raw}\n",
	                        "images/base.yaml:2:36: invalid sha256 'ABC' (expected 64 lowercase "
	                        "hex digits)");
	expect_role_error_again("base:\n  image: {url: http://x/y, sha256: " SHA_B
	                        ", format: vmdk}\n",
	                        "images/base.yaml:2:110: unknown image format 'vmdk' (expected raw "
	                        "or qcow2)");
	expect_role_error_again("base:\n  image: {url: /x/y, sha256: " SHA_B ", format: raw}\n",
	                        "images/base.yaml:2:16: invalid url '/x/y' (expected an http://, "
	                        "https:// or file:// URL)");
	expect_role_error_again("base:\n  image: {url: http://x/y, sha256: " SHA_B
	                        ", format: raw, size: 1}\n",
	                        "images/base.yaml:2:115: unknown key 'size' in 'image' (expected one of: "
	                        "url, sha256, format)");
	expect_role_error_again("disk: {size: 2G}\n"
	                        "base:\n  image: {url: http://x/y, sha256: " SHA_B ", format: raw}\n",
	                        "images/base.yaml:1:7: 'disk' cannot be set in a role with 'base: "
	                        "image:' (line 3): the image brings its own disk");
	tu_write("s.sh", "#!/bin/sh\n");
	expect_role_error_again("scripts: [nope.sh]\n",
	                        "images/base.yaml:1:11: script 'nope.sh' does not exist");
}
END_TEST

/* Chain rules are checked when the role is resolved (validate). */
START_TEST(test_base_image_chain_errors)
{
	setup_project();
	tu_write("s.sh", "#!/bin/sh\n");
	tu_write("images/sized.yaml", "abstract: true\ndisk: {size: 2G}\n");
	tu_write("images/cloud.yaml", "extends: sized\n"
	                              "base:\n  image: {url: http://x/y, sha256: " SHA_B
	                              ", format: raw}\n");
	tu_write("images/plain.yaml", "scripts: [s.sh]\n");
	struct ib_project *p = load_ok();
	struct ib_ctx ctx;
	struct ib_resolved *r = (struct ib_resolved *)&sentinel;
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_role_resolve(&ctx, p, "cloud", &r), -IB_E_SPEC);
	ck_assert_ptr_eq(r, (struct ib_resolved *)&sentinel);
	ck_assert_str_eq(ctx.err, "images/sized.yaml:2:7: role 'sized' sets 'disk' but role 'cloud' "
	                          "starts from 'base: image:' (images/cloud.yaml:3): the image "
	                          "brings its own disk");
	ib_ctx_init(&ctx);
	ck_assert_int_eq(ib_role_resolve(&ctx, p, "plain", &r), -IB_E_SPEC);
	ck_assert_str_eq(ctx.err, "images/plain.yaml:1:10: 'scripts' needs 'base: image:' in role "
	                          "'plain' or a role it extends (a bootstrapped role runs nothing "
	                          "at build time; use 'firstboot')");
	ib_project_free(p);
}
END_TEST

static Suite *spec_suite(void)
{
	Suite *s = suite_create("spec");
	TU_CASE(s, "valid_project", test_valid_project);
	TU_CASE(s, "project_options", test_project_options);
	TU_CASE(s, "load_by_file_path", test_load_by_file_path);
	TU_CASE(s, "resolve_merge", test_resolve_merge);
	TU_CASE(s, "resolve_unknown", test_resolve_unknown);
	TU_CASE(s, "parse_size", test_parse_size);
	TU_CASE(s, "cloud_init_emit", test_cloud_init_emit);
	TU_CASE(s, "err_unknown_key", test_err_unknown_key);
	TU_CASE(s, "err_wrong_type", test_err_wrong_type);
	TU_CASE(s, "err_wrong_item_type", test_err_wrong_item_type);
	TU_CASE(s, "err_missing_destination", test_err_missing_destination);
	TU_CASE(s, "err_project_missing_debian", test_err_project_missing_debian);
	TU_CASE(s, "err_project_values", test_err_project_values);
	TU_CASE(s, "err_duplicate_key", test_err_duplicate_key);
	TU_CASE(s, "err_duplicate_role", test_err_duplicate_role);
	TU_CASE(s, "err_extends_unknown", test_err_extends_unknown);
	TU_CASE(s, "err_extends_cycle", test_err_extends_cycle);
	TU_CASE(s, "err_path_escapes", test_err_path_escapes);
	TU_CASE(s, "err_symlink_escapes", test_err_symlink_escapes);
	TU_CASE(s, "absolute_path_inside", test_absolute_path_inside);
	TU_CASE(s, "err_missing_source", test_err_missing_source);
	TU_CASE(s, "err_destination", test_err_destination);
	TU_CASE(s, "err_mode_owner", test_err_mode_owner);
	TU_CASE(s, "err_package_and_unit_names", test_err_package_and_unit_names);
	TU_CASE(s, "err_bool", test_err_bool);
	TU_CASE(s, "err_role_disk", test_err_role_disk);
	TU_CASE(s, "err_role_names", test_err_role_names);
	TU_CASE(s, "err_structure", test_err_structure);
	TU_CASE(s, "err_empty_role", test_err_empty_role);
	TU_CASE(s, "err_syntax", test_err_syntax);
	TU_CASE(s, "err_multiple_documents", test_err_multiple_documents);
	TU_CASE(s, "err_aliases", test_err_aliases);
	TU_CASE(s, "err_nesting", test_err_nesting);
	TU_CASE(s, "err_too_large", test_err_too_large);
	TU_CASE(s, "err_tags", test_err_tags);
	TU_CASE(s, "err_missing_images_dir", test_err_missing_images_dir);
	TU_CASE(s, "err_no_project_file", test_err_no_project_file);
	TU_CASE(s, "error_stops_at_first_file", test_error_stops_at_first_file);
	TU_CASE(s, "artifacts_and_images", test_artifacts_and_images);
	TU_CASE(s, "artifact_errors", test_artifact_errors);
	TU_CASE(s, "artifact_errors_sha", test_artifact_errors_sha);
	TU_CASE(s, "artifact_errors_pin", test_artifact_errors_pin);
	TU_CASE(s, "artifact_errors_dest", test_artifact_errors_dest);
	TU_CASE(s, "artifact_errors_member", test_artifact_errors_member);
	TU_CASE(s, "image_errors", test_image_errors);
	TU_CASE(s, "image_errors_digest", test_image_errors_digest);
	TU_CASE(s, "checks", test_checks);
	TU_CASE(s, "checks_errors", test_checks_errors);
	TU_CASE(s, "vars_and_templates", test_vars_and_templates);
	TU_CASE(s, "vars_errors", test_vars_errors);
	TU_CASE(s, "template_unknown_var", test_template_unknown_var);
	TU_CASE(s, "base_image", test_base_image);
	TU_CASE(s, "base_image_errors", test_base_image_errors);
	TU_CASE(s, "base_image_chain_errors", test_base_image_chain_errors);
	return s;
}

TU_MAIN(spec_suite)
