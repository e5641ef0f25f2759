/* vparse.h: the pure parts of verification: buffers and text read from an image.
 *
 * No libguestfs here: everything works on memory, so the unit suite covers it without an
 * appliance. Text from the image is untrusted: parsers bound what they keep and never
 * read past the given length.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "util/strbuf.h"
#include "util/util.h"

/* ---- boot sectors (bootsig.c) ---- */

/* GRUB's boot.img in sector 0 (512 bytes): code before the disk signature, GRUB's marker,
 * the 0x55AA signature, and its pointer to core.img equal to core_lba. 0, or -1 with the
 * reason in why. */
int ib_check_mbr(const uint8_t *sector, uint64_t core_lba, char *why, size_t n);
/* The first sector of GRUB's i386-pc core.img (diskboot.img) at core_lba in a partition of
 * part_sectors sectors: its code and messages, and a blocklist loading the rest of core.img
 * from the next sector at segment 0x820, within the partition. */
int ib_check_core_sector(const uint8_t *sector, uint64_t core_lba, uint64_t part_sectors, char *why,
                         size_t n);
/* The first bytes of a UEFI executable: MZ header, PE signature, x86-64 machine. */
int ib_check_pe_x64(const uint8_t *buf, size_t len, char *why, size_t n);

/* ---- secrets (secrets.c) ---- */

enum ib_secret {
	IB_SECRET_NONE,
	IB_SECRET_PRIVATE_KEY, /* -----BEGIN ... PRIVATE KEY----- (PEM, OpenSSH, PGP) */
	IB_SECRET_AWS_KEY,     /* an AWS access key id, AKIA + 16 [0-9A-Z] */
	IB_SECRET_K8S_TOKEN,   /* a kubeadm bootstrap token, [a-z0-9]{6}.[a-z0-9]{16} */
	/* The rest are known only by the name they are given: a value alone looks like any
	 * other base64 or hex string. */
	IB_SECRET_AWS_SECRET,    /* secret_access_key = 40 base64 characters */
	IB_SECRET_AWS_SESSION,   /* aws_session_token or x-amz-security-token = 64 or more */
	IB_SECRET_K8S_CERT_KEY,  /* certificate-key or cert_key = 64 hex digits (kubeadm) */
	IB_SECRET_REGISTRY_AUTH, /* "auth": "<base64 user:password>" (docker config.json) */
};
const char *ib_secret_name(enum ib_secret s);

/* Look for a secret starting at a position in [from, to) of buf[0..len). Patterns are
 * matched whole, with their boundaries: the byte before position 0 counts as the start
 * of the data, and the end of buf as its end. The caller keeps to <= len - IB_SECRET_SPAN
 * unless buf ends where the data ends, so that every match is decided with all the bytes
 * it needs. Returns the offset of the first match and sets *ret, or SIZE_MAX. */
#define IB_SECRET_SPAN 128
size_t ib_secret_find(const char *buf, size_t len, size_t from, size_t to, enum ib_secret *ret);

/* Streaming over one file's content in chunks of any size: every position is examined
 * once, with its context, across chunk boundaries. */
struct ib_secret_scanner {
	char *buf;
	size_t len, alloc;
	size_t next;   /* first position of buf not examined yet */
	uint64_t base; /* file offset of buf[0] */
	enum ib_secret found;
	uint64_t offset; /* file offset of the match */
};
void ib_secret_scanner_init(struct ib_secret_scanner *s);
/* Returns 1 once a secret was found (feeding more is then pointless), else 0. */
int ib_secret_feed(struct ib_secret_scanner *s, const void *data, size_t len);
int ib_secret_finish(struct ib_secret_scanner *s);
void ib_secret_scanner_release(struct ib_secret_scanner *s);

/* Users of /etc/shadow (or groups of /etc/gshadow) whose password field holds something
 * other than a locked or empty marker ("", "*", "!", "!*", any run of '!' and '*'):
 * a password hash. Appended to ret. */
void ib_shadow_hashed(const char *text, size_t len, struct strv *ret);

/* ---- text files (vtext.c) ---- */

struct ib_fstab_entry {
	char *spec; /* "UUID=...", "LABEL=...", "/dev/..." */
	char *file; /* mountpoint */
	char *type;
};
/* Every entry of an fstab; caller frees with ib_fstab_free. */
void ib_fstab_parse(const char *text, size_t len, struct ib_fstab_entry **ret, size_t *ret_n);
void ib_fstab_free(struct ib_fstab_entry *e, size_t n);

struct ib_grubcfg {
	struct strv kernels; /* paths of `linux` lines, without a "(dev)" prefix */
	struct strv initrds; /* paths of `initrd` lines */
	struct strv roots;   /* root= arguments of `linux` lines */
	struct strv search;  /* "uuid:X" or "label:X" of `search` lines setting root */
};
void ib_grubcfg_parse(const char *text, size_t len, struct ib_grubcfg *ret);
void ib_grubcfg_release(struct ib_grubcfg *c);

/* The installed version of package pkg in a dpkg status file: 1 and *ret_version
 * (caller frees), or 0 when not installed. */
int ib_dpkg_version(const char *text, size_t len, const char *pkg, char **ret_version);

/* ---- sysctl (vsysctl.c) ---- */

/* The settings of sysctl.d files in the order systemd-sysctl applies them. */
struct ib_sysctl {
	struct strv keys; /* normalised with dots, may hold globs */
	struct strv values;
};
/* Normalise a key as systemd does: when its first separator is '/', '/' and '.' swap. */
void ib_sysctl_normalize(char *key);
/* Apply one file's text: later settings win. */
void ib_sysctl_apply(struct ib_sysctl *s, const char *text, size_t len);
/* The value that applies to name (exact key or glob), or NULL. */
const char *ib_sysctl_get(const struct ib_sysctl *s, const char *name);
void ib_sysctl_release(struct ib_sysctl *s);
/* Values equal after trimming and collapsing runs of blanks. */
int ib_sysctl_value_eq(const char *a, const char *b);
/* The files systemd-sysctl reads: *.conf names of dirs[i] (listed in names[i]), dirs
 * given highest precedence first; a name in an earlier dir hides the same name in later
 * ones; the result is sorted by name. Paths appended to ret. */
void ib_sysctl_files(const char *const *dirs, const struct strv *names, size_t n_dirs,
                     struct strv *ret);

/* ---- systemd units (vunits.c) ---- */

struct ib_unit_link {
	const char *dir;  /* directory under /etc/systemd/system: "" or "multi-user.target.wants" */
	const char *name; /* the link's name */
	const char *target; /* what it points to */
};
enum ib_unit_state { IB_UNIT_DISABLED, IB_UNIT_ENABLED, IB_UNIT_MASKED };
/* As `systemctl is-enabled` sees unit from /etc/systemd/system: masked by a link to
 * /dev/null; enabled by a link named unit (or an instance of the template unit, or
 * pointing at unit) in a .wants, .requires or .upholds directory, or by an alias (another
 * name linked to unit). *ret_link (may be NULL) is the link that decided. */
enum ib_unit_state ib_unit_state(const struct ib_unit_link *links, size_t n, const char *unit,
                                 const struct ib_unit_link **ret_link);
