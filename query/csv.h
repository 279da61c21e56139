/*
 * csv.h - an RFC 4180 record reader as a pure function over bytes (private
 * to the query engine; LOAD CSV feeds it from a file in load.c).
 *
 * csv_next looks at a window of input that starts at a record boundary
 * and either decodes one whole record from it or says it needs more
 * bytes. It keeps no input between calls, so the caller owns the window
 * and its size bound (a record never spans more than CSV_RECORD_BYTES_MAX
 * raw bytes), and a call that needs more input is repeated with what it
 * did not consume and more bytes. Accepted: quoted fields holding the
 * terminator, doubled quotes and line breaks; CRLF or LF line ends; a
 * UTF-8 byte-order mark before the first record; a last record without a
 * line end. Blank lines are skipped. A quote inside an unquoted field is
 * kept as it is. An error names the line its record starts on.
 */
#ifndef LORA_QUERY_CSV_H
#define LORA_QUERY_CSV_H

#include <stddef.h>
#include <stdint.h>

#define CSV_RECORD_BYTES_MAX (1u << 20) /* raw bytes of one record */
#define CSV_FIELDS_MAX       4096       /* fields in one record */
#define CSV_MSG_BYTES        160

enum {
	CSV_LIMIT = -2, /* more than CSV_FIELDS_MAX fields: msg, err_line */
	CSV_ERROR = -1, /* malformed: msg and err_line say where */
	CSV_MORE = 0,   /* no whole record in the window: give more bytes */
	CSV_RECORD = 1, /* one record decoded into the fields */
	CSV_END = 2,    /* eof and nothing left */
};

struct csv_field {
	size_t off, len; /* into the caller's text buffer */
	int quoted;
};

struct csv_reader {
	char term;       /* field terminator, ',' by default */
	int bom_checked; /* set once the start of the input was looked at */
	uint64_t line;   /* 1-based line on which the next record starts */
	/* the last CSV_RECORD: */
	uint64_t rec_line;
	size_t nf;
	struct csv_field f[CSV_FIELDS_MAX];
	/* CSV_ERROR, CSV_LIMIT: the line the record starts on */
	uint64_t err_line;
	char msg[CSV_MSG_BYTES];
};

void csv_init(struct csv_reader *r, char term);

/*
 * Decodes the record at the start of buf[0..len). eof: no bytes follow
 * buf. text (borrowed, at least len bytes) receives the decoded fields,
 * which r->f locates. *used is the bytes consumed, which the next call
 * must not be given again: on CSV_RECORD the record, its line end and
 * the blank lines before it; on CSV_MORE and CSV_END the blank lines
 * (and byte-order mark) before a record not yet whole, so that any
 * number of blank lines fits a bounded window.
 */
int csv_next(struct csv_reader *r, const char *buf, size_t len, int eof,
             char *text, size_t *used);

#endif /* LORA_QUERY_CSV_H */
