/*
 * packstream.h - PackStream v1, the value encoding of the Bolt protocol:
 * LoraDB values (proto Value) to PackStream bytes and back.
 *
 * Encoding appends to a lora_buf. Graph values become Bolt structures
 * (Node, Relationship, Path with unbound relationships), temporal values
 * the Bolt temporal structures, vectors lists of floats. What differs by
 * Bolt version is chosen by struct ps_enc: element ids (5.x) and UTC
 * date-times (5.x, or 4.4 with the "utc" patch) versus local ones.
 *
 * Decoding is a pure function of its bytes (fuzzed: tests/fuzz
 * fuzz_packstream): a message is one structure whose fields are decoded
 * into proto Values; structures inside a value must be temporal ones
 * (Date, Time, LocalTime, DateTime, DateTimeZoneId, LocalDateTime,
 * Duration; both the 5.x UTC and the 4.4 local DateTime tags, which do
 * not overlap). Everything is bounded: nesting depth, values per message,
 * and every length is checked against the bytes that remain before
 * anything is allocated. Bad bytes are LORA_ECORRUPT (or LORA_ELIMIT)
 * with a message, never a crash.
 */
#ifndef LORA_NODE_PACKSTREAM_H
#define LORA_NODE_PACKSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "lora.h"
#include "lora_pb.h"

#define PS_MESSAGE_FIELDS_MAX 8          /* fields of one Bolt message */
#define PS_VALUES_MAX         (1u << 20) /* values in one message */
#define PS_DEPTH_MAX          LORA_VALUE_DEPTH_MAX

/* ---- encoding ----------------------------------------------------------- */

struct ps_enc {
	int element_ids;  /* 5.x: nodes and relationships carry element ids */
	int utc_datetime; /* 5.x or the 4.4 "utc" patch: DateTime 'I' / 'i' */
};

/* Each returns 0 or LORA_ENOMEM / LORA_ELIMIT (the buffer's limit). */
int ps_put_null(struct lora_buf *b);
int ps_put_bool(struct lora_buf *b, int v);
int ps_put_int(struct lora_buf *b, int64_t v);
int ps_put_float(struct lora_buf *b, double v);
int ps_put_string(struct lora_buf *b, const char *s, size_t len);
int ps_put_str(struct lora_buf *b, const char *s); /* NUL-terminated */
int ps_put_bytes(struct lora_buf *b, const uint8_t *p, size_t len);
int ps_put_list_header(struct lora_buf *b, uint32_t n);
int ps_put_map_header(struct lora_buf *b, uint32_t n);
int ps_put_struct_header(struct lora_buf *b, uint8_t tag, uint8_t n_fields);
/* v may be NULL (null). A value nested deeper than PS_DEPTH_MAX lists and
 * maps (nodes and relationships count as maps, paths not; [[1]] is 2
 * deep): LORA_ELIMIT. */
int ps_put_value(struct lora_buf *b, const Lora__Value *v,
                 const struct ps_enc *e);

/* ---- decoding ----------------------------------------------------------- */

/*
 * The UTC offset (seconds) of the named zone at `seconds`, which counts
 * from 1970 in UTC (local == 0) or in the zone's local time (local == 1).
 * 0 or LORA_EINVAL for an unknown zone. May be NULL: then structures
 * with a zone name are refused.
 */
typedef int (*ps_zone_fn)(const char *zone, int64_t seconds, int local,
                          int32_t *offset_seconds);

struct ps_dec {
	ps_zone_fn zone;
};

struct ps_message {
	uint8_t tag;
	uint32_t n_fields;
	Lora__Value *fields[PS_MESSAGE_FIELDS_MAX]; /* owned: ps_message_free */
};

/*
 * Decodes one message (a structure and its fields, which must use every
 * byte). On 0, *m holds the fields (free with ps_message_free); on error
 * m holds nothing and errmsg says why. A value nested deeper than
 * PS_DEPTH_MAX lists and maps is LORA_ELIMIT; a map field (parameters,
 * extra) is the message's and no level of the values in it.
 */
int ps_decode_message(const uint8_t *p, size_t len, const struct ps_dec *d,
                      struct ps_message *m, char *errmsg);
void ps_message_free(struct ps_message *m);

/* Decodes one value that must use every byte (tests). *out: free with
 * lora__value__free_unpacked(*out, &lora_pb_allocator). */
int ps_decode_value(const uint8_t *p, size_t len, const struct ps_dec *d,
                    Lora__Value **out, char *errmsg);

/* Helpers over decoded maps: the entry named key, or NULL. Borrowed. */
const Lora__Value *ps_map_get(const Lora__Value *map, const char *key);

#endif /* LORA_NODE_PACKSTREAM_H */
