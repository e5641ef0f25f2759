/* check_verify.c: the pure parts of `imgbuild verify`: secret scanning across chunk
 * boundaries, shadow, fstab, grub.cfg, dpkg status, sysctl precedence, unit links, and
 * the boot sector signatures (synthetic, and GRUB's own images when installed). */
#include "testutil.h"
#include "verify/vparse.h"

/* ---- secrets ---- */

static enum ib_secret find_all(const char *s, size_t *ret_off)
{
	enum ib_secret k = IB_SECRET_NONE;
	size_t off = ib_secret_find(s, strlen(s), 0, strlen(s), &k);
	if (ret_off)
		*ret_off = off;
	return off == SIZE_MAX ? IB_SECRET_NONE : k;
}

START_TEST(test_secret_patterns)
{
	static const struct {
		const char *text;
		enum ib_secret want;
	} cases[] = {
	        {"-----BEGIN RSA PRIVATE KEY-----\nMIIE", IB_SECRET_PRIVATE_KEY},
	        {"x-----BEGIN EC PRIVATE KEY-----", IB_SECRET_PRIVATE_KEY},
	        {"-----BEGIN OPENSSH PRIVATE KEY-----", IB_SECRET_PRIVATE_KEY},
	        {"-----BEGIN DSA PRIVATE KEY-----", IB_SECRET_PRIVATE_KEY},
	        {"-----BEGIN PRIVATE KEY-----", IB_SECRET_PRIVATE_KEY},
	        {"-----BEGIN ENCRYPTED PRIVATE KEY-----", IB_SECRET_PRIVATE_KEY},
	        {"-----BEGIN PGP PRIVATE KEY BLOCK-----", IB_SECRET_PRIVATE_KEY},
	        {"-----BEGIN CERTIFICATE-----", IB_SECRET_NONE},
	        {"-----BEGIN PUBLIC KEY-----", IB_SECRET_NONE},
	        {"-----BEGIN RSA PRIVATE KEY", IB_SECRET_NONE}, /* no closing dashes */
	        {"-----BEGIN lowercase private key-----", IB_SECRET_NONE},
	        {"aws_access_key_id = AKIA0123456789ABCDEF\n", IB_SECRET_AWS_KEY},
	        {"AKIA0123456789ABCDEF", IB_SECRET_AWS_KEY},
	        {"XAKIA0123456789ABCDEF", IB_SECRET_NONE},
	        {"AKIA0123456789ABCDEFG", IB_SECRET_NONE},
	        {"AKIA0123456789ABCDE", IB_SECRET_NONE},
	        {"AKIAIOSFODNN7EXAMPLE", IB_SECRET_NONE}, /* AWS's documentation example */
	        {"token: abcdef.0123456789abcdef\n", IB_SECRET_K8S_TOKEN},
	        {"--token=k3x9zq.0123456789abcdef", IB_SECRET_K8S_TOKEN},
	        {"abcdef.0123456789abcdef", IB_SECRET_K8S_TOKEN},
	        {"\"abcdef.0123456789abcdef\"", IB_SECRET_K8S_TOKEN},
	        {"xabcdef.0123456789abcdef", IB_SECRET_NONE},
	        {"abcdef.0123456789abcdefg", IB_SECRET_NONE},
	        {"abcdef.0123456789abcde", IB_SECRET_NONE},
	        {"abcdef.0123456789abcdef.example.com", IB_SECRET_NONE},
	        {"www.abcdef.0123456789abcdef", IB_SECRET_NONE},
	        {"ABCDEF.0123456789ABCDEF", IB_SECRET_NONE},
	        {"libfoo.so.1 python3.11 kernel.pid_max = 4194304", IB_SECRET_NONE},
	        /* temporary key ids, and the kinds known by the name they are given */
	        {"ASIA0123456789ABCDEF", IB_SECRET_AWS_KEY},
	        {"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY0123456789\n",
	         IB_SECRET_AWS_SECRET},
	        {"export AWS_SECRET_ACCESS_KEY='wJalrXUtnFEMI/K7MDENG+bPxRfiCY0123456789'",
	         IB_SECRET_AWS_SECRET},
	        {"{\"SecretAccessKey\": \"wJalrXUtnFEMI/K7MDENG/bPxRfiCY0123456789\"}",
	         IB_SECRET_AWS_SECRET},
	        {"aws_secret_access_key = $AWS_SECRET_ACCESS_KEY", IB_SECRET_NONE},
	        {"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY012345678", IB_SECRET_NONE},
	        {"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY0123456789X", IB_SECRET_NONE},
	        {"wJalrXUtnFEMI/K7MDENG/bPxRfiCY0123456789", IB_SECRET_NONE}, /* nameless */
	        /* AWS's documentation example, as for the key id */
	        {"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", IB_SECRET_NONE},
	        {"aws_session_token=IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDexample1234",
	         IB_SECRET_AWS_SESSION},
	        {"X-Amz-Security-Token: FwoGZXIvYXdzEJr//////////wEaDKexampleexampleexampleexample0000000",
	         IB_SECRET_AWS_SESSION},
	        {"aws_session_token = shortvalue", IB_SECRET_NONE},
	        {"AWS_SESSION_TOKEN=\"${AWS_SESSION_TOKEN}\"", IB_SECRET_NONE},
	        {"K8S_CERT_KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
	         IB_SECRET_K8S_CERT_KEY},
	        {"kubeadm join --certificate-key "
	         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef --control-plane",
	         IB_SECRET_K8S_CERT_KEY},
	        {"certificateKey: \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"",
	         IB_SECRET_K8S_CERT_KEY},
	        {"--certificate-key \"$K8S_CERT_KEY\"", IB_SECRET_NONE},
	        {"cert_key=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
	         IB_SECRET_NONE},
	        {"ssl_certificate_key /etc/ssl/private/site.key;", IB_SECRET_NONE},
	        {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", IB_SECRET_NONE},
	        {"{\"auths\": {\"registry.example\": {\"auth\": \"dXNlcjpwYXNzd29yZDEyMw==\"}}}",
	         IB_SECRET_REGISTRY_AUTH},
	        {"{\"auth\": \"basic\", \"auth\":\"\"}", IB_SECRET_NONE},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		ck_assert_msg(find_all(cases[i].text, NULL) == cases[i].want, "'%s': got %s",
		              cases[i].text, ib_secret_name(find_all(cases[i].text, NULL)));
	size_t off;
	ck_assert_int_eq(find_all("x = 1\ntoken: abcdef.0123456789abcdef", &off),
	                 IB_SECRET_K8S_TOKEN);
	ck_assert_uint_eq(off, 13);
	ck_assert_str_eq(ib_secret_name(IB_SECRET_PRIVATE_KEY), "private key");
}
END_TEST

/* Feed text in chunks of every size from 1 to 200; the result must not depend on them. */
static void stream(const char *text, size_t chunk, enum ib_secret *ret, uint64_t *ret_off)
{
	struct ib_secret_scanner s;
	ib_secret_scanner_init(&s);
	size_t len = strlen(text);
	for (size_t i = 0; i < len; i += chunk)
		if (ib_secret_feed(&s, text + i, len - i < chunk ? len - i : chunk))
			break;
	ib_secret_finish(&s);
	*ret = s.found;
	*ret_off = s.offset;
	ib_secret_scanner_release(&s);
}

START_TEST(test_secret_stream)
{
	static const char *const needles[] = {
	        "-----BEGIN OPENSSH PRIVATE KEY-----",
	        "AKIA0123456789ABCDEF",
	        "abcdef.0123456789abcdef",
	        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY0123456789",
	        "certificate-key=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	        "\"auth\": \"dXNlcjpwYXNzd29yZDEyMw==\"",
	        "aws_session_token=IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDexample1234",
	};
	static const char *const near_misses[] = {
	        "xabcdef.0123456789abcdef",   "abcdef.0123456789abcdefx",
	        "abcdef.0123456789abcdef.io", "AKIA0123456789ABCDEFX",
	        "-----BEGIN PUBLIC KEY-----",
	        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY0123456789X",
	        "K8S_CERT_KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
	        "aws_session_token = IQoJb3JpZ2luX2VjEJr",
	};
	char text[1024];
	for (size_t n = 0; n < ARRAY_SIZE(needles); n++)
		for (size_t pad = 0; pad < 300; pad += 37) {
			memset(text, ' ', pad);
			snprintf(text + pad, sizeof(text) - pad, "%s\n# and more text after it\n",
			         needles[n]);
			for (size_t chunk = 1; chunk <= 200; chunk += (chunk < 20 ? 1 : 23)) {
				enum ib_secret k;
				uint64_t off;
				stream(text, chunk, &k, &off);
				ck_assert_msg(k != IB_SECRET_NONE, "'%s' at %zu, chunk %zu: missed",
				              needles[n], pad, chunk);
				ck_assert_uint_eq(off, pad);
			}
		}
	for (size_t n = 0; n < ARRAY_SIZE(near_misses); n++)
		for (size_t pad = 0; pad < 300; pad += 41) {
			memset(text, ' ', pad);
			snprintf(text + pad, sizeof(text) - pad, "%s", near_misses[n]);
			for (size_t chunk = 1; chunk <= 200; chunk += (chunk < 30 ? 1 : 17)) {
				enum ib_secret k;
				uint64_t off;
				stream(text, chunk, &k, &off);
				ck_assert_msg(k == IB_SECRET_NONE,
				              "'%s' at %zu, chunk %zu: false hit", near_misses[n],
				              pad, chunk);
			}
		}
}
END_TEST

START_TEST(test_secret_stream_large)
{
	/* A megabyte of text without secrets, then one at the very end. */
	struct ib_secret_scanner s;
	ib_secret_scanner_init(&s);
	char chunk[4096];
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = "abcdefghij.klmnop qrstuvw\n"[i % 26];
	for (int i = 0; i < 256; i++)
		ck_assert_int_eq(ib_secret_feed(&s, chunk, sizeof(chunk)), 0);
	ck_assert_uint_le(s.alloc, sizeof(chunk) + 3 * IB_SECRET_SPAN);
	const char tail[] = "\nabcdef.0123456789abcdef";
	ib_secret_feed(&s, tail, strlen(tail));
	ck_assert_int_eq(ib_secret_finish(&s), 1);
	ck_assert_int_eq(s.found, IB_SECRET_K8S_TOKEN);
	ck_assert_uint_eq(s.offset, 256 * sizeof(chunk) + 1);
	ib_secret_scanner_release(&s);
}
END_TEST

START_TEST(test_shadow)
{
	const char text[] = "root:*:19723:0:99999:7:::\n"
	                    "daemon:!:19723::::::\n"
	                    "sshd:!*:19723::::::\n"
	                    "nobody::19723::::::\n"
	                    "debian:$6$salt$hash:19723:0:99999:7:::\n"
	                    "locked:!$y$j9T$abc$def:19723::::::\n"
	                    "rhel:!!:19723::::::\n"
	                    "garbage line\n"
	                    "last:plaintext";
	struct strv who = {0};
	ib_shadow_hashed(text, strlen(text), &who);
	ck_assert_uint_eq(who.n, 3);
	ck_assert_str_eq(who.v[0], "debian");
	ck_assert_str_eq(who.v[1], "locked");
	ck_assert_str_eq(who.v[2], "last");
	strv_release(&who);
}
END_TEST

/* ---- text files ---- */

START_TEST(test_fstab)
{
	const char text[] = "# /etc/fstab: written by imgbuild\n"
	                    "UUID=782d95b4-a6a1-4bfe-87ff-659cd1be6f80 / ext4 rw 0 1\n"
	                    "\n"
	                    "  LABEL=EFI\t/boot/efi   vfat umask=0077 0 2\n"
	                    "proc /proc proc defaults 0 0\n"
	                    "   # indented comment\n"
	                    "/dev/vdb1 /data";
	struct ib_fstab_entry *e = NULL;
	size_t n = 0;
	ib_fstab_parse(text, strlen(text), &e, &n);
	ck_assert_uint_eq(n, 4);
	ck_assert_str_eq(e[0].spec, "UUID=782d95b4-a6a1-4bfe-87ff-659cd1be6f80");
	ck_assert_str_eq(e[0].file, "/");
	ck_assert_str_eq(e[0].type, "ext4");
	ck_assert_str_eq(e[1].spec, "LABEL=EFI");
	ck_assert_str_eq(e[1].file, "/boot/efi");
	ck_assert_str_eq(e[1].type, "vfat");
	ck_assert_str_eq(e[3].type, "auto");
	ib_fstab_free(e, n);
}
END_TEST

START_TEST(test_grubcfg)
{
	/* What disk/bootcfg.c writes, and what update-grub writes. */
	const char ours[] =
	        "# /boot/grub/grub.cfg: written by imgbuild\n"
	        "serial --unit=0 --speed=115200\n"
	        "search --no-floppy --fs-uuid --set=root 782d95b4-a6a1-4bfe-87ff-659cd1be6f80\n"
	        "menuentry 'Debian GNU/Linux' {\n"
	        "\tlinux /boot/vmlinuz-6.1.0-50-cloud-amd64 root=UUID=782d95b4 ro console=ttyS0\n"
	        "\tinitrd /boot/initrd.img-6.1.0-50-cloud-amd64\n"
	        "}\n";
	struct ib_grubcfg c;
	ib_grubcfg_parse(ours, strlen(ours), &c);
	ck_assert_uint_eq(c.kernels.n, 1);
	ck_assert_str_eq(c.kernels.v[0], "/boot/vmlinuz-6.1.0-50-cloud-amd64");
	ck_assert_uint_eq(c.initrds.n, 1);
	ck_assert_str_eq(c.initrds.v[0], "/boot/initrd.img-6.1.0-50-cloud-amd64");
	ck_assert_uint_eq(c.roots.n, 1);
	ck_assert_str_eq(c.roots.v[0], "UUID=782d95b4");
	ck_assert_uint_eq(c.search.n, 1);
	ck_assert_str_eq(c.search.v[0], "uuid:782d95b4-a6a1-4bfe-87ff-659cd1be6f80");
	ib_grubcfg_release(&c);

	const char theirs[] = "  search --no-floppy --label --set root boot\n"
	                      "  search --file /boot/x\n"
	                      "\tlinux16\t(hd0,gpt3)/vmlinuz root=LABEL=root\n"
	                      "\tinitrd '(hd0,gpt3)/initrd.img' /microcode.img\n";
	ib_grubcfg_parse(theirs, strlen(theirs), &c);
	ck_assert_uint_eq(c.search.n, 1);
	ck_assert_str_eq(c.search.v[0], "label:boot");
	ck_assert_str_eq(c.kernels.v[0], "/vmlinuz");
	ck_assert_uint_eq(c.initrds.n, 2);
	ck_assert_str_eq(c.initrds.v[0], "/initrd.img");
	ck_assert_str_eq(c.initrds.v[1], "/microcode.img");
	ck_assert_str_eq(c.roots.v[0], "LABEL=root");
	ib_grubcfg_release(&c);
}
END_TEST

START_TEST(test_dpkg_status)
{
	const char text[] = "Package: openssh-server\n"
	                    "Status: install ok installed\n"
	                    "Version: 1:9.2p1-2+deb12u10\n"
	                    "Description: secure shell\n"
	                    " continued Version: 0\n"
	                    "\n"
	                    "Package: removed\n"
	                    "Status: deinstall ok config-files\n"
	                    "Version: 1.0\n"
	                    "\n"
	                    "Package: half\n"
	                    "Status: install ok half-installed\n"
	                    "Version: 2.0\n"
	                    "\n"
	                    "Package: libc6\n"
	                    "Architecture: i386\n"
	                    "Status: deinstall ok not-installed\n"
	                    "\n"
	                    "Package: libc6\n"
	                    "Architecture: amd64\n"
	                    "Version: 2.36-9+deb12u13\n"
	                    "Status: install ok installed";
	char *v = NULL;
	ck_assert_int_eq(ib_dpkg_version(text, strlen(text), "openssh-server", &v), 1);
	ck_assert_str_eq(v, "1:9.2p1-2+deb12u10");
	free(v);
	ck_assert_int_eq(ib_dpkg_version(text, strlen(text), "libc6", &v), 1);
	ck_assert_str_eq(v, "2.36-9+deb12u13");
	free(v);
	ck_assert_int_eq(ib_dpkg_version(text, strlen(text), "removed", &v), 0);
	ck_assert_int_eq(ib_dpkg_version(text, strlen(text), "half", &v), 0);
	ck_assert_int_eq(ib_dpkg_version(text, strlen(text), "openssh", &v), 0);
	ck_assert_int_eq(ib_dpkg_version(text, strlen(text), "absent", &v), 0);
}
END_TEST

/* ---- sysctl ---- */

START_TEST(test_sysctl_parse)
{
	char k1[] = "net/ipv4/ip_forward", k2[] = "net.ipv4.conf.eth0/1.rp_filter",
	     k3[] = "net/ipv4/conf/eth0.1/rp_filter";
	ib_sysctl_normalize(k1);
	ib_sysctl_normalize(k2);
	ib_sysctl_normalize(k3);
	ck_assert_str_eq(k1, "net.ipv4.ip_forward");
	ck_assert_str_eq(k2, "net.ipv4.conf.eth0/1.rp_filter");
	ck_assert_str_eq(k3, "net.ipv4.conf.eth0/1.rp_filter");

	struct ib_sysctl s = {0};
	const char usr[] = "# vendor\n"
	                   "kernel.pid_max = 4194304\n"
	                   "net.ipv4.conf.*.rp_filter = 2\n"
	                   "net.ipv4.tcp_rmem = 4096\t87380   6291456\n";
	const char etc[] = "; local\n"
	                   "  -net/ipv4/ip_forward=1  \r\n"
	                   "not an assignment\n"
	                   "net.ipv4.conf.all.rp_filter = 1\n"
	                   "net.ipv4.conf.*.rp_filter = 0\n"
	                   "kernel.pid_max = 32768";
	ib_sysctl_apply(&s, usr, strlen(usr));
	ib_sysctl_apply(&s, etc, strlen(etc));
	ck_assert_str_eq(ib_sysctl_get(&s, "kernel.pid_max"), "32768");
	ck_assert_str_eq(ib_sysctl_get(&s, "net.ipv4.ip_forward"), "1");
	ck_assert_str_eq(ib_sysctl_get(&s, "net/ipv4/ip_forward"), "1");
	/* The explicit key wins over a later glob; other keys take the last glob. */
	ck_assert_str_eq(ib_sysctl_get(&s, "net.ipv4.conf.all.rp_filter"), "1");
	ck_assert_str_eq(ib_sysctl_get(&s, "net.ipv4.conf.eth0.rp_filter"), "0");
	ck_assert_ptr_null(ib_sysctl_get(&s, "vm.swappiness"));
	ck_assert(ib_sysctl_value_eq(ib_sysctl_get(&s, "net.ipv4.tcp_rmem"), "4096 87380 6291456"));
	ck_assert(ib_sysctl_value_eq(" 1 ", "1"));
	ck_assert(!ib_sysctl_value_eq("10", "1"));
	ck_assert(!ib_sysctl_value_eq("1", "10"));
	ck_assert(!ib_sysctl_value_eq("1 2", "1"));
	ck_assert(!ib_sysctl_value_eq("", "0"));
	ib_sysctl_release(&s);
}
END_TEST

START_TEST(test_sysctl_files)
{
	static const char *const dirs[] = {"/etc/sysctl.d", "/run/sysctl.d", "/usr/lib/sysctl.d"};
	struct strv names[3] = {{0}, {0}, {0}};
	strv_push(&names[0], "99-sysctl.conf");
	strv_push(&names[0], "50-pid-max.conf"); /* masks the vendor's file of that name */
	strv_push(&names[0], "README.sysctl");
	strv_push(&names[2], "50-pid-max.conf");
	strv_push(&names[2], "10-vendor.conf");
	strv_push(&names[2], "99-protect-links.conf");
	struct strv files = {0};
	ib_sysctl_files(dirs, names, 3, &files);
	ck_assert_uint_eq(files.n, 4);
	ck_assert_str_eq(files.v[0], "/usr/lib/sysctl.d/10-vendor.conf");
	ck_assert_str_eq(files.v[1], "/etc/sysctl.d/50-pid-max.conf");
	ck_assert_str_eq(files.v[2], "/usr/lib/sysctl.d/99-protect-links.conf");
	ck_assert_str_eq(files.v[3], "/etc/sysctl.d/99-sysctl.conf");
	strv_release(&files);
	for (int i = 0; i < 3; i++)
		strv_release(&names[i]);
}
END_TEST

/* ---- units ---- */

START_TEST(test_units)
{
	static const struct ib_unit_link links[] = {
	        {"multi-user.target.wants", "ssh.service", "/lib/systemd/system/ssh.service"},
	        {"", "sshd.service", "/lib/systemd/system/ssh.service"},
	        {"getty.target.wants", "getty@tty1.service", "/lib/systemd/system/getty@.service"},
	        {"sysinit.target.requires", "other-name.service",
	         "/etc/systemd/system/real.service"},
	        {"", "dbus-org.freedesktop.timesync1.service",
	         "/lib/systemd/system/systemd-timesyncd.service"},
	        {"", "dbus-org.freedesktop.resolve1.service",
	         "/lib/systemd/system/systemd-resolved.service"},
	        {"sysinit.target.wants", "systemd-resolved.service",
	         "/lib/systemd/system/systemd-resolved.service"},
	        {"", "masked.service", "/dev/null"},
	        {"multi-user.target.wants", "masked.service", "/lib/systemd/system/masked.service"},
	        {"", "linked.service", "/opt/app/linked.service"},
	};
	const size_t n = ARRAY_SIZE(links);
	const struct ib_unit_link *by = NULL;
	ck_assert_int_eq(ib_unit_state(links, n, "ssh.service", &by), IB_UNIT_ENABLED);
	ck_assert_str_eq(by->dir, "multi-user.target.wants");
	ck_assert_int_eq(ib_unit_state(links, n, "getty@.service", &by), IB_UNIT_ENABLED);
	ck_assert_int_eq(ib_unit_state(links, n, "getty@tty1.service", NULL), IB_UNIT_ENABLED);
	ck_assert_int_eq(ib_unit_state(links, n, "getty@tty2.service", NULL), IB_UNIT_DISABLED);
	ck_assert_int_eq(ib_unit_state(links, n, "real.service", NULL), IB_UNIT_ENABLED);
	ck_assert_int_eq(ib_unit_state(links, n, "systemd-timesyncd.service", &by),
	                 IB_UNIT_ENABLED);
	ck_assert_str_eq(by->name, "dbus-org.freedesktop.timesync1.service");
	/* The dependency link is named even where an alias comes first. */
	ck_assert_int_eq(ib_unit_state(links, n, "systemd-resolved.service", &by), IB_UNIT_ENABLED);
	ck_assert_str_eq(by->dir, "sysinit.target.wants");
	ck_assert_int_eq(ib_unit_state(links, n, "masked.service", NULL), IB_UNIT_MASKED);
	ck_assert_int_eq(ib_unit_state(links, n, "linked.service", NULL), IB_UNIT_DISABLED);
	ck_assert_int_eq(ib_unit_state(links, n, "cron.service", &by), IB_UNIT_DISABLED);
	ck_assert_ptr_null(by);
	ck_assert_int_eq(ib_unit_state(NULL, 0, "ssh.service", NULL), IB_UNIT_DISABLED);
}
END_TEST

/* ---- boot sectors ---- */

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* What disk/grub_bios.c makes of boot.img and diskboot.img (or a stand-in of each). */
static void make_mbr(uint8_t mbr[512], uint64_t core_lba)
{
	memset(mbr, 0, 512);
	FILE *f = fopen("/usr/lib/grub/i386-pc/boot.img", "rb");
	if (!f || fread(mbr, 1, 440, f) != 440) {
		memset(mbr, 0x90, 0x100);
		static const char msgs[] = "GRUB \0Geom\0Hard Disk\0Read\0 Error";
		memcpy(mbr + 0x180, msgs, sizeof(msgs));
	}
	if (f)
		fclose(f);
	memset(mbr + 440, 0, 72);
	put_le64(mbr + 0x5c, core_lba);
	mbr[510] = 0x55;
	mbr[511] = 0xaa;
}

static void make_core(uint8_t s[512], uint64_t core_lba, uint16_t sectors)
{
	memset(s, 0, 512);
	FILE *f = fopen("/usr/lib/grub/i386-pc/diskboot.img", "rb");
	if (!f || fread(s, 1, 512, f) != 512) {
		static const char msgs[] = "loading\0.\0\r\n\0Geom\0Read\0 Error";
		memcpy(s, "\x52\x56\xbe\x1b\x81", 5);
		memcpy(s + 0x11b, msgs, sizeof(msgs));
	}
	if (f)
		fclose(f);
	put_le64(s + 500, core_lba + 1);
	s[508] = (uint8_t)sectors;
	s[509] = (uint8_t)(sectors >> 8);
	s[510] = 0x20;
	s[511] = 0x08;
}

START_TEST(test_boot_sectors)
{
	char why[256];
	uint8_t s[512];
	make_mbr(s, 2048);
	ck_assert_msg(ib_check_mbr(s, 2048, why, sizeof(why)) == 0, "%s", why);
	ck_assert_int_eq(ib_check_mbr(s, 4096, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "sector 2048"));
	s[511] = 0;
	ck_assert_int_eq(ib_check_mbr(s, 2048, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "55 aa"));
	memset(s, 0, 440);
	s[511] = 0xaa;
	ck_assert_int_eq(ib_check_mbr(s, 2048, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "no boot code"));
	memset(s, 0x33, 440); /* some other boot loader */
	ck_assert_int_eq(ib_check_mbr(s, 2048, why, sizeof(why)), -1);

	make_core(s, 2048, 60);
	ck_assert_msg(ib_check_core_sector(s, 2048, 2048, why, sizeof(why)) == 0, "%s", why);
	ck_assert_int_eq(ib_check_core_sector(s, 2048, 40, why, sizeof(why)), -1); /* too big */
	ck_assert_int_eq(ib_check_core_sector(s, 1024, 2048, why, sizeof(why)), -1);
	s[510] = 0;
	ck_assert_int_eq(ib_check_core_sector(s, 2048, 2048, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "segment"));
	memset(s, 0, sizeof(s));
	ck_assert_int_eq(ib_check_core_sector(s, 2048, 2048, why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "core.img"));
}
END_TEST

START_TEST(test_pe)
{
	char why[256];
	uint8_t b[512] = {'M', 'Z'};
	b[0x3c] = 0x80;
	memcpy(b + 0x80, "PE\0\0\x64\x86", 6);
	ck_assert_msg(ib_check_pe_x64(b, sizeof(b), why, sizeof(why)) == 0, "%s", why);
	b[0x84] = 0x4c; /* i386 */
	b[0x85] = 0x01;
	ck_assert_int_eq(ib_check_pe_x64(b, sizeof(b), why, sizeof(why)), -1);
	ck_assert_ptr_nonnull(strstr(why, "x86-64"));
	b[0x3c] = 0xff;
	b[0x3d] = 0xff;
	ck_assert_int_eq(ib_check_pe_x64(b, sizeof(b), why, sizeof(why)), -1);
	b[0] = 0x7f;
	ck_assert_int_eq(ib_check_pe_x64(b, sizeof(b), why, sizeof(why)), -1);
	ck_assert_int_eq(ib_check_pe_x64(b, 10, why, sizeof(why)), -1);
}
END_TEST

static Suite *verify_suite(void)
{
	Suite *s = suite_create("verify");
	TU_CASE(s, "secret_patterns", test_secret_patterns);
	TU_CASE(s, "secret_stream", test_secret_stream);
	TU_CASE(s, "secret_stream_large", test_secret_stream_large);
	TU_CASE(s, "shadow", test_shadow);
	TU_CASE(s, "fstab", test_fstab);
	TU_CASE(s, "grubcfg", test_grubcfg);
	TU_CASE(s, "dpkg_status", test_dpkg_status);
	TU_CASE(s, "sysctl_parse", test_sysctl_parse);
	TU_CASE(s, "sysctl_files", test_sysctl_files);
	TU_CASE(s, "units", test_units);
	TU_CASE(s, "boot_sectors", test_boot_sectors);
	TU_CASE(s, "pe", test_pe);
	return s;
}

TU_MAIN(verify_suite)
