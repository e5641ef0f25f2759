/* vm.c: QEMU for a local cluster: the accelerator, the command line, stopping a machine. */
#include "cluster/cluster.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "util/fs.h"
#include "util/proc.h"
#include "util/strbuf.h"

#define PROBE_SECONDS "20"

/* The newest /boot/vmlinuz-*, or NULL. Caller frees. */
static char *host_kernel(void)
{
	DIR *d = opendir("/boot");
	if (!d)
		return NULL;
	char *best = NULL;
	struct dirent *de;
	while ((de = readdir(d)))
		if (startswith(de->d_name, "vmlinuz-") &&
		    (!best || strverscmp(de->d_name, best) > 0)) {
			free(best);
			best = xstrdup(de->d_name);
		}
	closedir(d);
	char *path = best ? ib_path_join("/boot", best) : NULL;
	free(best);
	return path;
}

/* Boot the host's kernel under KVM to its "no root" panic: on some hosts /dev/kvm opens
 * and QEMU starts, but a guest hangs once its kernel runs. */
static int kvm_boots(struct ib_ctx *ctx)
{
	_cleanup_free_ char *kernel = host_kernel();
	if (!kernel || access(kernel, R_OK) < 0)
		return 1; /* nothing to try: trust /dev/kvm */
	_cleanup_free_ char *cache = ib_cache_dir();
	if (ib_mkdir_p(ctx, cache, 0755) < 0)
		return 0;
	_cleanup_free_ char *log = xasprintf("%s/kvm-probe.%d.serial", cache, (int)getpid());
	_cleanup_free_ char *serial = xasprintf("file:%s", log);
	const char *const argv[] = {"timeout",
	                            PROBE_SECONDS,
	                            "qemu-system-x86_64",
	                            "-accel",
	                            "kvm",
	                            "-m",
	                            "256",
	                            "-display",
	                            "none",
	                            "-nodefaults",
	                            "-no-reboot",
	                            "-serial",
	                            serial,
	                            "-kernel",
	                            kernel,
	                            "-append",
	                            "console=ttyS0 panic=-1",
	                            NULL};
	struct ib_ctx quiet;
	ib_ctx_init(&quiet);
	int r = ib_run(&quiet, argv, NULL, 0, NULL);
	_cleanup_free_ char *text = NULL;
	int ok = r == 0 && ib_read_file(&quiet, log, 16u << 20, &text, NULL) == 0 &&
	         strstr(text, "Kernel panic");
	unlink(log);
	return ok;
}

/* Per boot of the host: the probe's answer holds until it reboots. */
static void boot_id(char out[64])
{
	struct ib_ctx quiet;
	ib_ctx_init(&quiet);
	_cleanup_free_ char *id = NULL;
	snprintf(out, 64, "unknown");
	if (ib_read_file(&quiet, "/proc/sys/kernel/random/boot_id", 256, &id, NULL) == 0) {
		id[strcspn(id, "\n")] = '\0';
		snprintf(out, 64, "%s", id);
	}
}

const char *ib_qemu_accel(struct ib_ctx *ctx)
{
	const char *env = getenv("IMGBUILD_QEMU_ACCEL");
	if (env && (streq(env, "kvm") || streq(env, "tcg")))
		return env;
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return "tcg";
	close(fd);
	char id[64];
	boot_id(id);
	_cleanup_free_ char *cache = ib_cache_dir();
	_cleanup_free_ char *path = ib_path_join(cache, "qemu-accel");
	_cleanup_free_ char *old = NULL;
	struct ib_ctx quiet;
	ib_ctx_init(&quiet);
	if (ib_read_file(&quiet, path, 4096, &old, NULL) == 0) {
		char *sp = strchr(old, ' ');
		if (sp && startswith(old, id) && (size_t)(sp - old) == strlen(id))
			return startswith(sp + 1, "kvm") ? "kvm" : "tcg";
	}
	const char *accel = kvm_boots(ctx) ? "kvm" : "tcg";
	_cleanup_free_ char *line = xasprintf("%s %s\n", id, accel);
	ib_write_file_atomic(&quiet, path, line, strlen(line), 0644);
	return accel;
}

char *ib_vm_netdev_user(const struct ib_vm *vm)
{
	struct strbuf sb = STRBUF_INIT;
	sb_addf(&sb, "user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22", vm->ssh_port);
	for (size_t i = 0; i < vm->n_fwd; i++)
		sb_addf(&sb, ",hostfwd=tcp:127.0.0.1:%d-:%d", vm->fwd[i].host_port,
		        vm->fwd[i].guest_port);
	return sb_take(&sb);
}

void ib_vm_argv(const struct ib_vm *vm, const char *dir, const char *seed,
                const struct ib_cluster_state *s, struct strv *ret)
{
	struct strv a = {0};
	strv_push(&a, "qemu-system-x86_64");
	strv_push(&a, "-name");
	strv_push_take(&a, xasprintf("imgbuild-%s", vm->name));
	strv_push(&a, "-accel");
	strv_push(&a, s->accel);
	strv_push(&a, "-m");
	strv_push_take(&a, xasprintf("%d", vm->memory));
	strv_push(&a, "-smp");
	strv_push_take(&a, xasprintf("%d", vm->cpus));
	strv_push(&a, "-nodefaults");
	strv_push(&a, "-display");
	strv_push(&a, "none");
	strv_push(&a, "-daemonize");
	strv_push(&a, "-pidfile");
	strv_push_take(&a, xasprintf("%s/vm/%s.pid", dir, vm->name));
	strv_push(&a, "-serial");
	strv_push_take(&a, xasprintf("file:%s/vm/%s.serial", dir, vm->name));
	_cleanup_free_ char *mon = xasprintf("%s/vm/%s.monitor", dir, vm->name);
	if (strlen(mon) < sizeof(((struct sockaddr_un *)0)->sun_path)) {
		strv_push(&a, "-monitor");
		strv_push_take(&a, xasprintf("unix:%s,server=on,wait=off", mon));
	}
	if (streq(s->firmware, "uefi")) {
		strv_push(&a, "-drive");
		strv_push(&a, "if=pflash,format=raw,unit=0,readonly=on,file=" IB_OVMF_CODE);
		strv_push(&a, "-drive");
		strv_push_take(&a, xasprintf("if=pflash,format=raw,unit=1,file=%s/vm/%s.vars.fd",
		                             dir, vm->name));
	}
	strv_push(&a, "-drive");
	strv_push_take(&a, xasprintf("file=%s/vm/%s.qcow2,if=virtio,format=qcow2", dir, vm->name));
	strv_push(&a, "-drive");
	strv_push_take(&a, xasprintf("file=%s,if=virtio,format=raw,readonly=on", seed));
	strv_push(&a, "-netdev");
	strv_push_take(&a, ib_vm_netdev_user(vm));
	strv_push(&a, "-device");
	strv_push_take(&a, xasprintf("virtio-net-pci,netdev=n0,mac=%s", vm->uplink_mac));
	strv_push(&a, "-netdev");
	strv_push_take(&a, xasprintf("socket,id=n1,udp=127.0.0.1:%d,localaddr=127.0.0.1:%d",
	                             s->hub_port, vm->link_port));
	strv_push(&a, "-device");
	strv_push_take(&a, xasprintf("virtio-net-pci,netdev=n1,mac=%s", vm->mac));
	*ret = a;
}

int ib_vm_alive(int pid, const char *dir)
{
	if (pid <= 0 || kill(pid, 0) < 0)
		return 0;
	_cleanup_free_ char *path = xasprintf("/proc/%d/cmdline", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[8192];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0; /* a zombie */
	/* Arguments are NUL-separated: the hub's is dir itself, QEMU's name files in dir/vm/. */
	buf[n] = '\0';
	_cleanup_free_ char *vmdir = xasprintf("%s/vm/", dir);
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1)
		if (streq(buf + i, dir) || strstr(buf + i, vmdir))
			return 1;
	return 0;
}

static int wait_gone(int pid, const char *dir, int tenths)
{
	for (int i = 0; i < tenths; i++) {
		if (!ib_vm_alive(pid, dir))
			return 1;
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return !ib_vm_alive(pid, dir);
}

/* 1 when the command went out: with no monitor to ask, there is nothing to wait for. */
static int monitor_quit(const char *monitor)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(monitor) >= sizeof(sa.sun_path))
		return 0;
	memcpy(sa.sun_path, monitor, strlen(monitor) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	struct timeval tv = {2, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int sent = 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		char buf[512];
		/* The banner, then the command; closing at once could drop it unread: wait for
		 * QEMU to close the connection as it quits (or the timeout). */
		if (read(fd, buf, sizeof(buf)) > 0 && write(fd, "quit\n", 5) == 5) {
			sent = 1;
			while (read(fd, buf, sizeof(buf)) > 0)
				;
		}
	}
	close(fd);
	return sent;
}

void ib_vm_stop(int pid, const char *dir, const char *monitor)
{
	if (!ib_vm_alive(pid, dir))
		return;
	if (monitor && monitor_quit(monitor) && wait_gone(pid, dir, 50))
		return;
	kill(pid, SIGTERM);
	if (wait_gone(pid, dir, 50))
		return;
	kill(pid, SIGKILL);
	wait_gone(pid, dir, 50);
}
