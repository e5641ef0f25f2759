/* jsonr.h: a small, strict, bounded JSON reader (RFC 8259) building a tree.
 *
 * Strict: exactly one value, optional whitespace around it; no BOM, no comments, no
 * trailing commas, no NaN/Infinity, no leading zeros, no control characters in strings,
 * valid UTF-8 only (no overlong forms, no surrogates), paired \u surrogates only, no
 * "\u0000" (strings are C strings), no duplicate keys in an object.
 * Bounded: the input size, the nesting depth and the number of values have limits, so a
 * hostile document (a registry's answer) costs bounded memory and time.
 * Errors name the byte offset and the 1-based line and column (in bytes).
 */
#pragma once

#include "ctx.h"

enum jsonr_type { JSONR_NULL, JSONR_BOOL, JSONR_NUMBER, JSONR_STRING, JSONR_ARRAY, JSONR_OBJECT };

struct jsonr {
	enum jsonr_type type;
	int boolean;         /* BOOL */
	int is_int;          /* NUMBER: an integer (no fraction, no exponent) that fits int64 */
	int64_t integer;     /* NUMBER with is_int */
	double number;       /* NUMBER, always */
	char *str;           /* STRING: decoded UTF-8; NUMBER: the literal text */
	size_t len;          /* STRING: length of str in bytes */
	struct jsonr *items; /* ARRAY: the elements; OBJECT: the values, in document order */
	char **keys;         /* OBJECT: keys[i] names items[i] */
	size_t n;            /* ARRAY, OBJECT: number of items */
};

struct jsonr_limits {
	size_t max_size;    /* bytes of input; 0: JSONR_DEFAULT_MAX_SIZE */
	unsigned max_depth; /* nesting of arrays and objects; 0: JSONR_DEFAULT_MAX_DEPTH */
	size_t max_values;  /* values in the whole document; 0: JSONR_DEFAULT_MAX_VALUES */
};
#define JSONR_DEFAULT_MAX_SIZE   ((size_t)16 << 20)
#define JSONR_DEFAULT_MAX_DEPTH  64u
#define JSONR_DEFAULT_MAX_VALUES ((size_t)1 << 20)

struct jsonr_error {
	size_t offset; /* bytes from the start of the input */
	unsigned line; /* 1-based */
	unsigned col;  /* 1-based, in bytes */
	char msg[128];
};

/* Parse data[0..len) (need not be NUL-terminated). lim may be NULL for the defaults.
 * Returns 0 and *ret (free with jsonr_free), or -1 with err filled. */
int jsonr_parse_ex(const char *data, size_t len, const struct jsonr_limits *lim, struct jsonr **ret,
                   struct jsonr_error *err);

/* The same with the default limits, recording "<what>: invalid JSON at line L, column C:
 * <msg>" with code on the context. */
int jsonr_parse(struct ib_ctx *ctx, ib_code code, const char *what, const char *data, size_t len,
                struct jsonr **ret);

void jsonr_free(struct jsonr *v);
static inline void jsonr_freep(struct jsonr **v)
{
	jsonr_free(*v);
}
#define _cleanup_jsonr_ _cleanup_(jsonr_freep)

const char *jsonr_type_name(enum jsonr_type t);

/* The member key of obj; NULL when obj is NULL or not an object, or the key is absent. */
const struct jsonr *jsonr_get(const struct jsonr *obj, const char *key);
/* The member key when it has type t, else NULL. */
const struct jsonr *jsonr_get_type(const struct jsonr *obj, const char *key, enum jsonr_type t);
/* The string member key, or NULL when absent or not a string. */
const char *jsonr_get_str(const struct jsonr *obj, const char *key);
