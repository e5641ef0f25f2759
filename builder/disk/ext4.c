/* ext4.c: the root filesystem made by mkfs.ext4 -d at its offset in the raw disk. */
#include "ext4.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "sbin.h"
#include "util/proc.h"

#define BLOCK       4096u
#define INODE_RATIO 16384u /* bytes per inode, as mke2fs.conf's default */
#define INODE_SIZE  256u
#define MAX_DEPTH   256

struct usage {
	uint64_t bytes; /* data and directory blocks */
	uint64_t inodes;
};

static uint64_t round_block(uint64_t n)
{
	return (n + BLOCK - 1) / BLOCK * BLOCK;
}

/* Add up what the tree below dirfd will take; symlinks are not followed. */
static int tree_usage(struct ib_ctx *ctx, int dirfd, const char *top, struct usage *u, int depth)
{
	if (depth > MAX_DEPTH)
		return ib_error(ctx, IB_E_SPEC, "'%s' is nested more than %d levels deep", top,
		                MAX_DEPTH);
	DIR *d = fdopendir(dirfd);
	if (!d) {
		int e = errno;
		close(dirfd);
		return ib_error_errno(ctx, IB_E_IO, e, "cannot read '%s'", top);
	}
	struct dirent *de;
	int r = 0;
	uint64_t entries = 0;
	while (r == 0 && (de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = ib_error_errno(ctx, IB_E_IO, errno, "cannot stat '%s' under '%s'",
			                   de->d_name, top);
			break;
		}
		entries++;
		u->inodes++;
		if (S_ISREG(st.st_mode)) {
			/* mke2fs keeps holes: count what is allocated when that is less. */
			uint64_t size = (uint64_t)st.st_size, alloc = (uint64_t)st.st_blocks * 512;
			u->bytes += round_block(alloc < size ? alloc : size);
		} else if (S_ISLNK(st.st_mode) && st.st_size >= 60)
			u->bytes += BLOCK;
		else if (S_ISDIR(st.st_mode)) {
			int fd = openat(dirfd, de->d_name,
			                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0) {
				r = ib_error_errno(ctx, IB_E_IO, errno,
				                   "cannot open '%s' under '%s'", de->d_name, top);
				break;
			}
			r = tree_usage(ctx, fd, top, u, depth + 1);
		}
	}
	closedir(d);
	/* A directory entry takes about 8 bytes plus its name: count 32. */
	u->bytes += round_block(entries * 32 + 1);
	return r;
}

/* What mke2fs 1.47 gives a filesystem of this many 4 KiB blocks for its journal. */
static uint64_t journal_bytes(uint64_t blocks)
{
	uint64_t j = blocks < 32768         ? 1024
	             : blocks < 256 * 1024  ? 4096
	             : blocks < 512 * 1024  ? 8192
	             : blocks < 4096 * 1024 ? 16384
	                                    : 32768;
	return j * BLOCK;
}

static int check_fits(struct ib_ctx *ctx, const char *tree, uint64_t bytes)
{
	int fd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot open tree '%s'", tree);
	struct usage u = {0, 1};
	int r = tree_usage(ctx, fd, tree, &u, 0);
	if (r < 0)
		return r;
	/* Inode tables, the journal and about 2% for bitmaps, descriptors and the reserve. */
	uint64_t overhead =
	        bytes / INODE_RATIO * INODE_SIZE + journal_bytes(bytes / BLOCK) + bytes / 50;
	uint64_t avail = bytes > overhead ? bytes - overhead : 0;
	if (u.bytes > avail)
		return ib_error(
		        ctx, IB_E_SPEC,
		        "the tree '%s' needs about %llu MiB but a %llu MiB root partition holds "
		        "only about %llu MiB: make the disk larger",
		        tree, (unsigned long long)(u.bytes >> 20) + 1,
		        (unsigned long long)(bytes >> 20), (unsigned long long)(avail >> 20));
	if (u.inodes + 16 > bytes / INODE_RATIO)
		return ib_error(ctx, IB_E_SPEC,
		                "the tree '%s' has %llu files but a %llu MiB root partition holds "
		                "only %llu: "
		                "make the disk larger",
		                tree, (unsigned long long)u.inodes,
		                (unsigned long long)(bytes >> 20),
		                (unsigned long long)(bytes / INODE_RATIO));
	return 0;
}

int ib_ext4_make(struct ib_ctx *ctx, const char *raw, uint64_t off, uint64_t bytes,
                 const char *tree, const char *uuid, const char *hash_seed, time_t mtime)
{
	int r = check_fits(ctx, tree, bytes);
	if (r < 0)
		return r;

	/* Inode tables and the journal get zeroed by punching holes: the raw file stays sparse
	 * and the kernel has no lazy initialisation left to do on first boot. */
	_cleanup_free_ char *ext = xasprintf("hash_seed=%s,root_owner=0:0,offset=%llu,nodiscard,"
	                                     "lazy_itable_init=0,lazy_journal_init=0",
	                                     hash_seed, (unsigned long long)off);
	_cleanup_free_ char *blocks = xasprintf("%llu", (unsigned long long)(bytes / BLOCK));
	_cleanup_free_ char *ratio = xasprintf("%u", INODE_RATIO);
	_cleanup_free_ char *isize = xasprintf("%u", INODE_SIZE);
	_cleanup_free_ char *fake = xasprintf("E2FSPROGS_FAKE_TIME=%lld", (long long)mtime);
	_cleanup_free_ char *tool = ib_sbin_tool("mkfs.ext4");
	const char *const argv[] = {tool, "-q",  "-F", "-b",   "4096", "-i", ratio,
	                            "-I", isize, "-L", "root", "-U",   uuid, "-E",
	                            ext,  "-d",  tree, raw,    blocks, NULL};
	const char *const env[] = {fake, NULL};
	if ((r = ib_run(ctx, argv, env, 0, NULL)) < 0) {
		ib_error_prefix(ctx, "cannot make the %llu MiB root filesystem",
		                (unsigned long long)(bytes >> 20));
		return r;
	}

	_cleanup_close_ int fd = open(raw, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return ib_error_errno(ctx, IB_E_IO, errno, "cannot open '%s'", raw);
	return ib_ext4_clamp_times(ctx, fd, raw, off, (int64_t)mtime);
}
