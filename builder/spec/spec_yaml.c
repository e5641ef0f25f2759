/* spec_yaml.c: libyaml events to a checked node tree, and one pair back to YAML text. */
#include "spec_internal.h"

#include <ctype.h>
#include <strings.h>

#include "util/strbuf.h"

int spec_err(struct ib_ctx *ctx, const char *display, int line, int col, const char *fmt, ...)
{
	char msg[1536];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return ib_error(ctx, IB_E_SPEC, "%s:%d:%d: %s", display, line, col, msg);
}

void ynode_free(struct ynode *n)
{
	if (!n)
		return;
	/* Depth is bounded by SPEC_MAX_DEPTH, so recursion is safe. */
	for (size_t i = 0; i < n->n; i++)
		ynode_free(n->items[i]);
	free(n->items);
	free(n->value);
	free(n->tag);
	free(n);
}

#define YTAG(t) "tag:yaml.org,2002:" t

static const char *const known_tags[] = {
        YTAG("str"),   YTAG("int"), YTAG("bool"), YTAG("null"),
        YTAG("float"), YTAG("seq"), YTAG("map"),
};

static int tag_known(const char *tag)
{
	for (size_t i = 0; i < ARRAY_SIZE(known_tags); i++)
		if (streq(tag, known_tags[i]))
			return 1;
	return 0;
}

static int is_null_text(const char *s)
{
	return !*s || streq(s, "~") || streq(s, "null") || streq(s, "Null") || streq(s, "NULL");
}

static int is_bool_text(const char *s)
{
	static const char *const words[] = {"true", "false", "yes", "no", "on", "off", "y", "n"};
	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		if (strcasecmp(s, words[i]) == 0)
			return 1;
	return 0;
}

static int is_number_text(const char *s)
{
	if (!*s)
		return 0;
	if (streq(s, ".inf") || streq(s, "-.inf") || streq(s, "+.inf") || streq(s, ".nan"))
		return 1;
	char *end;
	(void)strtod(s, &end);
	return *end == '\0' && !isspace((unsigned char)*s);
}

/* A plain scalar's meaning follows YAML 1.1 loosely: enough to describe it in a message. */
enum yscalar_kind ynode_kind(const struct ynode *n)
{
	if (n->tag) {
		if (streq(n->tag, YTAG("null")))
			return YK_NULL;
		if (streq(n->tag, YTAG("bool")))
			return YK_BOOL;
		if (streq(n->tag, YTAG("int")) || streq(n->tag, YTAG("float")))
			return YK_NUMBER;
		return YK_STRING;
	}
	if (n->style != YAML_PLAIN_SCALAR_STYLE)
		return YK_STRING;
	if (is_null_text(n->value))
		return YK_NULL;
	if (is_bool_text(n->value))
		return YK_BOOL;
	if (is_number_text(n->value))
		return YK_NUMBER;
	return YK_STRING;
}

const char *ynode_describe(const struct ynode *n)
{
	switch (n->type) {
	case YN_MAP: return "a mapping";
	case YN_SEQ: return "a sequence";
	case YN_SCALAR: break;
	}
	switch (ynode_kind(n)) {
	case YK_NULL: return "null";
	case YK_BOOL: return "a boolean";
	case YK_NUMBER: return "a number";
	case YK_STRING: break;
	}
	return "a string";
}

/* Event-driven loading state. */
struct loader {
	struct ib_ctx *ctx;
	const char *display;
	const char *data;
	size_t len;
	struct ynode *root;
	struct ynode *stack[SPEC_MAX_DEPTH + 1];
	size_t depth;
};

static int syntax_error(struct loader *l, const yaml_parser_t *parser)
{
	int line, col;
	if (parser->error == YAML_READER_ERROR) {
		/* Reader errors carry only a byte offset. */
		size_t off = parser->problem_offset < l->len ? parser->problem_offset : l->len;
		line = 1, col = 1;
		for (size_t i = 0; i < off; i++) {
			if (l->data[i] == '\n')
				line++, col = 1;
			else
				col++;
		}
	} else {
		line = (int)parser->problem_mark.line + 1;
		col = (int)parser->problem_mark.column + 1;
	}
	const char *problem = parser->problem ? parser->problem : "invalid YAML";
	if (parser->context)
		return spec_err(l->ctx, l->display, line, col, "%s (%s at %d:%d)", problem,
		                parser->context, (int)parser->context_mark.line + 1,
		                (int)parser->context_mark.column + 1);
	return spec_err(l->ctx, l->display, line, col, "%s", problem);
}

static void push_item(struct ynode *parent, struct ynode *child)
{
	if (parent->n == parent->alloc) {
		parent->alloc = parent->alloc ? parent->alloc * 2 : 8;
		parent->items = xrealloc(parent->items, parent->alloc * sizeof(*parent->items));
	}
	parent->items[parent->n++] = child;
}

/* Create a node for a scalar or collection start event and hang it under the open
 * collection. */
static int add_node(struct loader *l, const yaml_event_t *ev, enum ynode_type type,
                    const yaml_char_t *anchor, const yaml_char_t *tag, struct ynode **ret)
{
	int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;

	if (anchor)
		return spec_err(l->ctx, l->display, line, col,
		                "anchors and aliases are not supported");
	if (tag && !tag_known((const char *)tag))
		return spec_err(l->ctx, l->display, line, col, "unsupported tag '%s'",
		                (const char *)tag);
	if (l->depth >= SPEC_MAX_DEPTH)
		return spec_err(l->ctx, l->display, line, col, "nesting deeper than %d levels",
		                SPEC_MAX_DEPTH);

	struct ynode *parent = l->depth ? l->stack[l->depth - 1] : NULL;
	if (parent && parent->type == YN_MAP && parent->n % 2 == 0 && type != YN_SCALAR)
		return spec_err(l->ctx, l->display, line, col, "mapping keys must be scalars");

	struct ynode *n = xcalloc(1, sizeof(*n));
	n->type = type;
	n->line = line;
	n->col = col;
	n->tag = tag ? xstrdup((const char *)tag) : NULL;
	if (parent)
		push_item(parent, n);
	else
		l->root = n;
	*ret = n;
	return 0;
}

struct keyref {
	const struct ynode *key;
	size_t idx;
};

static int cmp_keyref(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;
	size_t lx = x->key->len, ly = y->key->len;
	int c = memcmp(x->key->value, y->key->value, lx < ly ? lx : ly);
	if (c)
		return c;
	if (lx != ly)
		return lx < ly ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* libyaml accepts repeated keys; a spec must not. Sorting keeps this O(n log n) for
 * large mappings; the reported key is the earliest repetition in the file. */
static int check_duplicate_keys(struct loader *l, const struct ynode *map)
{
	size_t pairs = map->n / 2;
	if (pairs < 2)
		return 0;
	_cleanup_free_ struct keyref *refs = xmalloc(pairs * sizeof(*refs));
	for (size_t i = 0; i < pairs; i++)
		refs[i] = (struct keyref){map->items[2 * i], i};
	qsort(refs, pairs, sizeof(*refs), cmp_keyref);
	const struct ynode *dup = NULL;
	size_t dup_idx = 0;
	for (size_t i = 1; i < pairs; i++) {
		const struct ynode *a = refs[i - 1].key, *b = refs[i].key;
		if (a->len == b->len && memcmp(a->value, b->value, a->len) == 0 &&
		    (!dup || refs[i].idx < dup_idx)) {
			dup = b;
			dup_idx = refs[i].idx;
		}
	}
	if (dup)
		return spec_err_at(l->ctx, l->display, dup, "duplicate key '%s'", dup->value);
	return 0;
}

static int handle_event(struct loader *l, const yaml_event_t *ev, int *docs, int *done)
{
	struct ynode *n;
	int r;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++*docs > 1)
			return spec_err(l->ctx, l->display, (int)ev->start_mark.line + 1,
			                (int)ev->start_mark.column + 1,
			                "more than one document in file");
		return 0;
	case YAML_ALIAS_EVENT:
		return spec_err(l->ctx, l->display, (int)ev->start_mark.line + 1,
		                (int)ev->start_mark.column + 1,
		                "anchors and aliases are not supported");
	case YAML_SCALAR_EVENT:
		r = add_node(l, ev, YN_SCALAR, ev->data.scalar.anchor, ev->data.scalar.tag, &n);
		if (r < 0)
			return r;
		n->len = ev->data.scalar.length;
		n->value = xmalloc(n->len + 1);
		memcpy(n->value, ev->data.scalar.value, n->len);
		n->value[n->len] = '\0';
		n->style = ev->data.scalar.style;
		/* Keys are compared as C strings later on. */
		if (l->depth && l->stack[l->depth - 1]->type == YN_MAP &&
		    l->stack[l->depth - 1]->n % 2 == 1 && strlen(n->value) != n->len)
			return spec_err_at(l->ctx, l->display, n,
			                   "mapping keys must not contain NUL characters");
		return 0;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		int seq = ev->type == YAML_SEQUENCE_START_EVENT;
		r = add_node(l, ev, seq ? YN_SEQ : YN_MAP,
		             seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor,
		             seq ? ev->data.sequence_start.tag : ev->data.mapping_start.tag, &n);
		if (r < 0)
			return r;
		l->stack[l->depth++] = n;
		return 0;
	}
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		n = l->stack[--l->depth];
		if (n->type == YN_MAP)
			return check_duplicate_keys(l, n);
		return 0;
	case YAML_STREAM_END_EVENT: *done = 1; return 0;
	case YAML_NO_EVENT:
	case YAML_STREAM_START_EVENT:
	case YAML_DOCUMENT_END_EVENT: return 0;
	}
	return 0;
}

int spec_yaml_load(struct ib_ctx *ctx, const char *display, const char *data, size_t len,
                   struct ynode **ret_root)
{
	struct loader l = {.ctx = ctx, .display = display, .data = data, .len = len};
	yaml_parser_t parser;
	int docs = 0, done = 0, r = 0;

	if (!yaml_parser_initialize(&parser))
		return ib_error(ctx, IB_E_LIB, "cannot initialise the YAML parser");
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	while (!done) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&parser, &ev)) {
			r = syntax_error(&l, &parser);
			break;
		}
		r = handle_event(&l, &ev, &docs, &done);
		yaml_event_delete(&ev);
		if (r < 0)
			break;
	}
	yaml_parser_delete(&parser);
	if (r < 0) {
		ynode_free(l.root);
		return r;
	}
	*ret_root = l.root;
	return 0;
}

/* Emitting. */

static int write_sb(void *data, unsigned char *buf, size_t size)
{
	sb_add(data, buf, size);
	return 1;
}

static int emit(yaml_emitter_t *e, yaml_event_t *ev, int ok)
{
	/* yaml_emitter_emit takes the event even when it fails. */
	if (!ok)
		return -1;
	return yaml_emitter_emit(e, ev) ? 0 : -1;
}

static int emit_node(yaml_emitter_t *e, const struct ynode *n, int is_key)
{
	yaml_event_t ev;
	const yaml_char_t *tag = (const yaml_char_t *)n->tag;
	int implicit = !n->tag;

	switch (n->type) {
	case YN_SCALAR: {
		const char *value = n->value;
		size_t len = n->len;
		/* An empty plain key can only be written quoted, which would make a null key a
		 * string; "~" keeps it null. */
		if (is_key && !len && n->style == YAML_PLAIN_SCALAR_STYLE && !n->tag)
			value = "~", len = 1;
		if (len > INT32_MAX)
			return -1;
		return emit(e, &ev,
		            yaml_scalar_event_initialize(&ev, NULL, tag, (const yaml_char_t *)value,
		                                         (int)len, implicit, implicit, n->style));
	}
	case YN_SEQ:
		if (emit(e, &ev,
		         yaml_sequence_start_event_initialize(&ev, NULL, tag, implicit,
		                                              YAML_BLOCK_SEQUENCE_STYLE)) < 0)
			return -1;
		for (size_t i = 0; i < n->n; i++)
			if (emit_node(e, n->items[i], 0) < 0)
				return -1;
		return emit(e, &ev, yaml_sequence_end_event_initialize(&ev));
	case YN_MAP:
		if (emit(e, &ev,
		         yaml_mapping_start_event_initialize(&ev, NULL, tag, implicit,
		                                             YAML_BLOCK_MAPPING_STYLE)) < 0)
			return -1;
		for (size_t i = 0; i < n->n; i++)
			if (emit_node(e, n->items[i], i % 2 == 0) < 0)
				return -1;
		return emit(e, &ev, yaml_mapping_end_event_initialize(&ev));
	}
	return -1;
}

static int emit_pair(yaml_emitter_t *e, const struct ynode *key, const struct ynode *value)
{
	yaml_event_t ev;
	if (emit(e, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING)) < 0 ||
	    emit(e, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1)) < 0 ||
	    emit(e, &ev,
	         yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
	                                             YAML_BLOCK_MAPPING_STYLE)) < 0 ||
	    emit_node(e, key, 1) < 0 || emit_node(e, value, 0) < 0 ||
	    emit(e, &ev, yaml_mapping_end_event_initialize(&ev)) < 0 ||
	    emit(e, &ev, yaml_document_end_event_initialize(&ev, 1)) < 0 ||
	    emit(e, &ev, yaml_stream_end_event_initialize(&ev)) < 0)
		return -1;
	return 0;
}

int spec_yaml_emit_pair(struct ib_ctx *ctx, const struct ynode *key, const struct ynode *value,
                        char **ret)
{
	struct strbuf sb = STRBUF_INIT;
	yaml_emitter_t e;

	if (!yaml_emitter_initialize(&e))
		return ib_error(ctx, IB_E_LIB, "cannot initialise the YAML emitter");
	yaml_emitter_set_output(&e, write_sb, &sb);
	yaml_emitter_set_unicode(&e, 1);
	yaml_emitter_set_width(&e, -1);
	yaml_emitter_set_break(&e, YAML_LN_BREAK);
	int r = emit_pair(&e, key, value);
	if (r == 0 && !yaml_emitter_flush(&e))
		r = -1;
	if (r < 0) {
		r = ib_error(ctx, IB_E_LIB, "cannot write cloud_init key '%s' as YAML: %s",
		             key->value, e.problem ? e.problem : "unknown emitter error");
		yaml_emitter_delete(&e);
		sb_release(&sb);
		return r;
	}
	yaml_emitter_delete(&e);
	/* libyaml ends a document that closes on a keep-chomped block scalar with "...".
	 * The text is meant to be concatenated with others into one document, and the
	 * value reads the same without the marker. */
	if (sb.len >= 4 && endswith(sb_str(&sb), "\n...\n"))
		sb.buf[sb.len -= 4] = '\0';
	*ret = sb_take(&sb);
	return 0;
}
