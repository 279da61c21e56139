/*
 * tck_values.h - the openCypher TCK value syntax: parse expected values from
 * feature-file tables, compare them with engine results (Lora__Value), turn
 * plain values into query parameters, and print engine results in the same
 * syntax for failure messages.
 *
 * Syntax (see ../shared/tck/README.md): null, true, false, integers,
 * floats (1.0, -0.5, 1e10, NaN, Inf, -Inf), 'strings' with backslash
 * escapes, [lists], {maps}, nodes (:A:B {k: v}), relationships [:T {k: v}]
 * and paths <(:A)-[:T]->(:B)<-[:U]-()>.
 *
 * Comparison rules (the TCK's): integers and floats are distinct (1 is not
 * 1.0); NaN matches NaN; -0.0 matches 0.0; node labels are a set, map keys
 * and properties are unordered; lists are ordered unless the caller asks
 * for unordered lists (then at every depth); a temporal result matches the
 * expected string that is its ISO 8601 form; a path matches node by node
 * and relationship by relationship, including each relationship's
 * direction along the path. Node and relationship ids are never compared.
 */
#ifndef TCK_VALUES_H
#define TCK_VALUES_H

#include <stddef.h>
#include <stdint.h>

#include "lora.h"
#include "lora_pb.h"

/* Nesting of lists / maps / paths the parser accepts. */
#define TCK_VALUE_DEPTH_MAX 64
/* Bytes of one parsed string or name. */
#define TCK_STRING_BYTES_MAX (1u << 20)

enum tck_kind {
	TCK_NULL,
	TCK_BOOL,
	TCK_INT,
	TCK_FLOAT,
	TCK_STRING,
	TCK_LIST,
	TCK_MAP,
	TCK_NODE,
	TCK_REL,
	TCK_PATH,
};

/* Direction of a relationship inside a path, as written. */
enum tck_dir {
	TCK_DIR_NONE = 0, /* -[:T]-  (either way) */
	TCK_DIR_OUT = 1,  /* -[:T]-> from the node before to the node after */
	TCK_DIR_IN = 2,   /* <-[:T]- from the node after to the node before */
};

/*
 * A parsed expected value. Everything it points to is owned by it and
 * freed by tck_value_free.
 */
struct tck_value {
	enum tck_kind kind;
	int b;                    /* BOOL */
	int64_t i;                /* INT */
	double f;                 /* FLOAT */
	char *s;                  /* STRING text (may hold NULs: see len);
	                           * REL type */
	size_t len;               /* STRING length in bytes */
	size_t n;                 /* LIST items, MAP entries, PATH elements */
	struct tck_value **items; /* LIST items; MAP values; PATH: node, rel,
	                           * node, ... */
	char **keys;              /* MAP keys */
	char **labels;            /* NODE labels */
	size_t n_labels;
	struct tck_value *props; /* NODE / REL: a MAP, never NULL */
	enum tck_dir dir;        /* REL inside a PATH */
};

/*
 * Parses `text` (the whole of it, surrounding blanks allowed). On success
 * *out is the caller's (tck_value_free). On failure returns LORA_EINVAL
 * (or LORA_ENOMEM) with a sentence in errmsg (LORA_ERRMSG_BYTES, may be
 * NULL).
 */
int tck_value_parse(const char *text, struct tck_value **out, char *errmsg);
void tck_value_free(struct tck_value *v);

/*
 * Converts a plain value (no nodes, relationships or paths) to a
 * Lora__Value for use as a query parameter. *out is the caller's:
 * lora__value__free_unpacked(*out, &lora_pb_allocator).
 */
int tck_value_to_pb(const struct tck_value *v, Lora__Value **out, char *errmsg);

/* Formats a temporal Lora__Value as its ISO 8601 string (the engine's
 * qry_value_format in the runner). Returns 0 on success. */
typedef int (*tck_format_fn)(const Lora__Value *v, struct lora_buf *out);

struct tck_cmp {
	int unordered_lists;           /* 1: lists compare as multisets */
	tck_format_fn format_temporal; /* NULL: temporals never match */
};

/* 1 when the engine's value `act` matches the expected `exp`, else 0.
 * act NULL counts as null. */
int tck_value_matches(const struct tck_value *exp, const Lora__Value *act,
                      const struct tck_cmp *cmp);

/*
 * Appends `act` in TCK syntax to out (for failure messages; temporals
 * through fmt when given, else as a placeholder). Returns 0 or LORA_ENOMEM.
 */
int tck_pb_format(const Lora__Value *act, tck_format_fn fmt,
                  struct lora_buf *out);

/* A deep copy of v (pack + unpack): free with lora__value__free_unpacked. */
Lora__Value *tck_pb_copy(const Lora__Value *v);

#endif /* TCK_VALUES_H */
