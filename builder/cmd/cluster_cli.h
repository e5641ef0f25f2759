/* cluster_cli.h: what the `cluster` subcommands (cmd_cluster*.c) share: the cluster's
 * directory and its files, and the entry points cmd_cluster() dispatches to. */
#pragma once

#include "cli.h"
#include "cluster/cluster.h"

/* What cloud-init's final_message prints (the templates in cloud-init/): a machine is up. */
#define CLUSTER_MARKER     "imgbuild: cloud-init finished on "
#define CLUSTER_SERIAL_MAX (256u << 20)

/* --dir, else OUT/cluster. Caller frees. */
char *cluster_dir(struct cli *cli, const struct ib_project *p);
/* Every host's user-data (into user_data) with the SSH keys in the file ssh_key (or NULL),
 * the tooling host's too when the plan has one. */
int cluster_render_hosts(struct cli *cli, const struct ib_project *p, struct ib_cluster_plan *plan,
                         const char *ssh_key);
/* Plan into dir with the options in cli; prints one line unless quiet. */
int cluster_plan_into(struct cli *cli, struct ib_project *p, const char *dir);
/* dir/vm/NAME.EXT. Caller frees. */
char *cluster_vm_file(const char *dir, const char *name, const char *ext);
/* Does the serial log of host name show cloud-init finished? */
int cluster_cloud_init_done(const char *dir, const char *name);
/* QEMU's pid: the state's, else its pid file's (a start the state did not record). */
int cluster_vm_pid(const char *dir, const struct ib_vm *v);
/* Stop every machine and the hub, remove the overlays, seeds of the run and the state;
 * the plan (CA, token, key, seeds) stays. */
void cluster_teardown(const char *dir, const struct ib_cluster_state *s);
/* Every machine's SSH port and forwards, a line each. */
void cluster_print_forwards(const struct ib_cluster_state *s);

int cluster_up(struct cli *cli, int argc);
int cluster_status(struct cli *cli, int argc);
int cluster_ssh(struct cli *cli, int argc, char **argv);
int cluster_logs(struct cli *cli, int argc, char **argv);
int cluster_down(struct cli *cli, int argc);
