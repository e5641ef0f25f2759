/* packages.c: read the installed package list from a tree's dpkg status file. */
#include "rootfs.h"
#include "util/fs.h"

#define DPKG_STATUS_MAX (64u << 20)

static int cmp_pkg(const void *a, const void *b)
{
	return strcmp(((const struct ib_package *)a)->name, ((const struct ib_package *)b)->name);
}

static void push(struct ib_package **pkgs, size_t *n, size_t *alloc, char **name, char **version)
{
	if (*n == *alloc) {
		*alloc = *alloc ? *alloc * 2 : 256;
		*pkgs = xrealloc(*pkgs, *alloc * sizeof(**pkgs));
	}
	(*pkgs)[*n].name = TAKE_PTR(*name);
	(*pkgs)[*n].version = TAKE_PTR(*version);
	(*n)++;
}

void ib_packages_free(struct ib_package *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(p[i].name);
		free(p[i].version);
	}
	free(p);
}

int ib_tree_packages(struct ib_ctx *ctx, const char *tree, struct ib_package **ret, size_t *ret_n)
{
	_cleanup_free_ char *path = ib_path_join(tree, "var/lib/dpkg/status");
	_cleanup_free_ char *data = NULL;
	int r = ib_read_file(ctx, path, DPKG_STATUS_MAX, &data, NULL);
	if (r < 0)
		return r;

	struct ib_package *pkgs = NULL;
	size_t n = 0, alloc = 0;
	char *name = NULL, *version = NULL;
	int installed = 0;
	/* Stanzas are separated by blank lines; strtok_r would merge them, so walk by hand. */
	char *line = data;
	while (line) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (*line == '\0') {
			if (name && version && installed) {
				push(&pkgs, &n, &alloc, &name, &version);
			}
			free(name);
			free(version);
			name = version = NULL;
			installed = 0;
		} else if (startswith(line, "Package: ")) {
			free(name);
			name = xstrdup(line + 9);
		} else if (startswith(line, "Version: ")) {
			free(version);
			version = xstrdup(line + 9);
		} else if (startswith(line, "Status: ")) {
			installed = endswith(line, " installed");
		}
		if (!nl) {
			/* A final stanza without a trailing blank line still counts. */
			if (name && version && installed) {
				push(&pkgs, &n, &alloc, &name, &version);
			}
			break;
		}
		line = nl + 1;
	}
	free(name);
	free(version);
	if (n > 1)
		qsort(pkgs, n, sizeof(*pkgs), cmp_pkg);
	*ret = pkgs;
	*ret_n = n;
	return 0;
}
