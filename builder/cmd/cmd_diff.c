/* cmd_diff.c: `imgbuild diff A B`: the files that differ between two images, one per line.
 *
 * Exit status as diff(1)'s: 0 the same, 1 different, 2 trouble (bad usage, an image that
 * cannot be opened or examined). */
#include "cli.h"
#include "util/json.h"
#include "verify/diff.h"

/* Paths come from an image: control characters and backslashes are escaped in text. */
static void put_path(struct strbuf *sb, const char *p)
{
	for (; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '\\')
			sb_adds(sb, "\\\\");
		else if (c < 0x20 || c == 0x7f)
			sb_addf(sb, "\\x%02x", c);
		else
			sb_addc(sb, (char)c);
	}
}

static void kinds_text(struct strbuf *sb, unsigned kinds)
{
	size_t start = sb->len;
	for (unsigned i = 0; i < IB_DIFF__KINDS; i++)
		if (kinds & (1u << i))
			sb_addf(sb, "%s%s", sb->len > start ? "," : "", ib_diff_kind_name(1u << i));
}

static void print_text(const struct ib_diff_result *res)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < res->n; i++) {
		const struct ib_diff_entry *e = &res->v[i];
		sb_reset(&sb);
		kinds_text(&sb, e->kinds);
		while (sb.len < 8)
			sb_addc(&sb, ' ');
		sb_addc(&sb, ' ');
		put_path(&sb, e->path);
		printf("%s\n", sb_str(&sb));
	}
	sb_release(&sb);
}

static void json_side(struct json *j, const char *key, const struct ib_diff_side *s)
{
	if (!s->present)
		return;
	char type[2] = {s->type, '\0'}, mode[8];
	snprintf(mode, sizeof(mode), "%04o", s->mode);
	json_obj_begin(j, key);
	json_str(j, "type", type);
	json_str(j, "mode", mode);
	json_int(j, "uid", s->uid);
	json_int(j, "gid", s->gid);
	if (s->type == 'f') {
		json_int(j, "size", s->size);
		json_str(j, "sha256", s->sha256);
	}
	if (s->type == 'l')
		json_str(j, "target", s->target);
	if (s->type == 'c' || s->type == 'b')
		json_int(j, "rdev", s->rdev);
	json_obj_end(j);
}

static void print_json(const char *a, const char *b, const struct ib_diff_result *res)
{
	struct strbuf sb = STRBUF_INIT;
	struct json j;
	for (size_t i = 0; i < res->n; i++) {
		const struct ib_diff_entry *e = &res->v[i];
		sb_reset(&sb);
		json_init(&j, &sb, 0);
		json_obj_begin(&j, NULL);
		json_str(&j, "event", "difference");
		json_str(&j, "path", e->path);
		json_arr_begin(&j, "kinds");
		for (unsigned k = 0; k < IB_DIFF__KINDS; k++)
			if (e->kinds & (1u << k))
				json_str(&j, NULL, ib_diff_kind_name(1u << k));
		json_arr_end(&j);
		json_side(&j, "a", &e->a);
		json_side(&j, "b", &e->b);
		json_obj_end(&j);
		printf("%s\n", sb_str(&sb));
	}
	sb_reset(&sb);
	json_init(&j, &sb, 0);
	json_obj_begin(&j, NULL);
	json_str(&j, "event", "summary");
	json_str(&j, "a", a);
	json_str(&j, "b", b);
	json_bool(&j, "same", res->n == 0);
	json_int(&j, "differences", (long long)res->n);
	json_int(&j, "paths_a", (long long)res->entries_a);
	json_int(&j, "paths_b", (long long)res->entries_b);
	json_str(&j, "accel", res->accel);
	json_num(&j, "launch_seconds", res->launch_seconds);
	json_num(&j, "seconds", res->seconds);
	json_obj_end(&j);
	printf("%s\n", sb_str(&sb));
	sb_release(&sb);
}

int cmd_diff(struct cli *cli, int argc, char **argv)
{
	if (argc != 3)
		return ib_error(&cli->ctx, IB_E_USAGE,
		                "'diff' takes exactly two images (see 'imgbuild diff --help')");
	struct ib_diff_result res;
	int r = ib_diff_images(&cli->ctx, argv[1], argv[2], &res);
	if (r == 0) {
		if (cli->json)
			print_json(argv[1], argv[2], &res);
		else
			print_text(&res);
		if (cli->verbosity > 1)
			fprintf(stderr,
			        "imgbuild: %zu of %zu and %zu paths differ (appliance %s: "
			        "launch %.1fs, all %.1fs)\n",
			        res.n, res.entries_a, res.entries_b, res.accel, res.launch_seconds,
			        res.seconds);
		r = res.n ? 1 : 0;
	}
	ib_diff_result_release(&res);
	/* diff(1): trouble is 2, whatever the trouble was (the message says which). */
	if (r < 0 && !ib_interrupted)
		return -IB_E_USAGE;
	return r;
}
