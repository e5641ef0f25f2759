/* util.h: ownership macros and small helpers shared by every stage. */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARRAY_SIZE(a)  (sizeof(a) / sizeof((a)[0]))
#define _cleanup_(f)   __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unused_       __attribute__((unused))
#define _noreturn_     __attribute__((noreturn))

/* Hand ownership out of a cleanup-managed local. */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _p_ = (p);                                                           \
		(p) = NULL;                                                                        \
		_p_;                                                                               \
	})
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _fd_ = (fd);                                                                   \
		(fd) = -1;                                                                         \
		_fd_;                                                                              \
	})

static inline void freep(void *p)
{
	free(*(void **)p);
}
static inline void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
#define _cleanup_free_   _cleanup_(freep)
#define _cleanup_close_  _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Allocation failure is not recoverable in a command-line tool: abort loudly. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Caller frees with free(). */
char *xasprintf(const char *fmt, ...) _printf_(1, 2);

static inline int streq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}
static inline int startswith(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}
int endswith(const char *s, const char *suffix);

/* A growable array of owned strings. */
struct strv {
	char **v;
	size_t n, alloc;
};
void strv_push(struct strv *s, const char *str); /* copies str */
void strv_push_take(struct strv *s, char *str);  /* takes str */
int strv_contains(const struct strv *s, const char *str);
void strv_sort(struct strv *s);
void strv_uniq_sorted(struct strv *s);
void strv_release(struct strv *s);
