/* cmd_list.c: `imgbuild list`: the roles, what they extend and what they add. */
#include "cli.h"
#include "util/json.h"

int cmd_list(struct cli *cli, int argc, char **argv)
{
	if (argc > 1)
		return ib_error(&cli->ctx, IB_E_USAGE, "'list' takes no arguments");
	struct ib_project *p = NULL;
	int r = cli_load_project(cli, &p);
	if (r < 0)
		return r;
	if (cli->json) {
		struct strbuf sb = STRBUF_INIT;
		struct json j;
		json_init(&j, &sb, 0);
		json_arr_begin(&j, NULL);
		for (size_t i = 0; i < p->n_roles; i++) {
			const struct ib_role *ro = &p->roles[i];
			json_obj_begin(&j, NULL);
			json_str(&j, "name", ro->name);
			json_str(&j, "extends", ro->extends);
			json_bool(&j, "abstract", ro->abstract);
			json_str(&j, "description", ro->description);
			json_int(&j, "packages", (long long)ro->packages.n);
			json_int(&j, "files", (long long)ro->n_files);
			json_obj_end(&j);
		}
		json_arr_end(&j);
		printf("%s\n", sb_str(&sb));
		sb_release(&sb);
	} else {
		printf("%-12s %-10s %-8s %s\n", "ROLE", "EXTENDS", "BUILT", "DESCRIPTION");
		for (size_t i = 0; i < p->n_roles; i++) {
			const struct ib_role *ro = &p->roles[i];
			printf("%-12s %-10s %-8s %s\n", ro->name, ro->extends ? ro->extends : "-",
			       ro->abstract ? "no" : "yes", ro->description ? ro->description : "");
		}
	}
	ib_project_free(p);
	return 0;
}
