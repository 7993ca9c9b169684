/*
 * decode_internal.h - what the decoder files share and decode.h does not
 * publish: the decoder object's layout, the string arena, error reporting,
 * input checks and typed field readers (decode_common.c), Python's
 * conversions (decode_python.c), and the event decoder's fast path
 * (decode_fast.c), which only decode_event.c calls.
 *
 * Pure C over json-c.
 */
#ifndef SR_DECODE_INTERNAL_H
#define SR_DECODE_INTERNAL_H

#include <json-c/json.h>

#include "decode.h"

struct sr_decoder
{
	struct json_tokener *tok;
	size_t		max_message_bytes;
	/* string arena for decoded fields; reset on every decode call */
	char	   *arena;
	size_t		arena_len;
	size_t		arena_cap;
	/* the skim fast path (json_skim.c) and its reduced copy of a message */
	size_t		skim_min;		/* smallest message skimmed; 0 = never */
	char	   *skim_buf;
	size_t		skim_cap;
};

/*
 * Messages of at least this many bytes are skimmed (all of them: with the
 * fast path, the skim pays at any size).  0 turns the skim off.
 */
#define SR_SKIM_MIN_MESSAGE 1

/* Arena offsets are resolved to pointers once decoding is finished. */
typedef size_t sr_aoff;
#define SR_ANULL ((sr_aoff) -1)

/* Scratch state: arena offsets of a job's strings until they are resolved. */
typedef struct sr_job_offsets
{
	sr_aoff		event_id;
	sr_aoff		primary_hash;
	sr_aoff		group_states;
	sr_aoff		occurrence_id;
	sr_aoff		queue;
} sr_job_offsets;

extern void sr_set_error(sr_error *err, sr_errclass cls, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
extern void sr_excerpt(char *dst, size_t dstlen, const char *s, size_t len);

extern void sr_arena_reset(sr_decoder *dec);
extern bool sr_arena_append(sr_decoder *dec, const char *s, size_t len,
							sr_error *err);
extern bool sr_arena_push(sr_decoder *dec, const char *s, size_t len,
						  sr_aoff *off, sr_error *err);
extern const char *sr_arena_str(const sr_decoder *dec, sr_aoff off);

extern bool sr_check_text(const char *what, const void *buf, size_t len,
						  sr_error *err);
extern struct json_object *sr_parse_json(sr_decoder *dec, const char *what,
										 const char *buf, size_t len,
										 sr_error *err);

extern bool sr_json_int64(struct json_object *v, const char *field,
						  int64_t *out, sr_error *err);
extern bool sr_json_string(struct json_object *v, const char *field,
						   const char **s, size_t *len, sr_error *err);
extern bool sr_json_timestamp(struct json_object *v, const char *field,
							  int64_t *us, sr_error *err);

extern bool sr_parse_decimal(const char *s, size_t len, const char *field,
							 int64_t *out, sr_error *err);
extern bool sr_parse_iso8601(const char *s, size_t len, const char *field,
							 int64_t *us, sr_error *err);

extern const sr_header *sr_find_header(const sr_header *headers,
									   size_t nheaders, const char *name);

/* decode_python.c: Python's int() and truthiness, as Sentry applies them */
extern bool sr_py_int(const char *s, size_t len, int64_t *out, bool *fits,
					  bool *zero);
extern bool sr_py_int_json(struct json_object *v, int64_t *out, bool *fits);
extern bool sr_json_truthy(struct json_object *v);

/* decode_common.c: the operations of each version, for both event paths */
extern const char *sr_event_lookup_op(int version, const char *op, size_t len);

/* decode_fast.c: SR_DECODE_ERROR means "declined", with err untouched */
struct sr_skim_pick;
extern const char *const sr_fast_event_members[];
extern const char *const sr_fast_task_members[];
extern sr_decode_status sr_event_fast(sr_decoder *dec, const char *buf,
									  const struct sr_skim_pick *pick,
									  sr_job *job, sr_job_offsets *o);

#endif							/* SR_DECODE_INTERNAL_H */
