/*
 * decode.h - decoders for Sentry's two Kafka wire formats.
 *
 * Pure C over json-c, with no PostgreSQL dependency, so that the fuzzers and
 * unit tests link it alone.  Nothing here throws or longjmps: every function
 * reports failure through an sr_error, which carries an error class (each
 * has a SQLSTATE, sr_errclass_sqlstate; decode_backend.c adds the hints for
 * the SQL wrappers and the relay) and a human-readable message.
 *
 * A decoder object owns a reusable json-c tokener and a string arena.  The
 * strings in a decoded sr_job or sr_commit point into that arena and stay
 * valid until the next call on the same decoder.
 */
#ifndef SR_DECODE_H
#define SR_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Default and hard limits.  The default message size, 25 MB, is above the
 * events topic's max.message.bytes as Sentry creates it (25,000,000 in
 * sentry-kafka-schemas), so that every message the topic can hold is
 * decoded.
 */
#define SR_DEFAULT_MAX_MESSAGE_BYTES (25 * 1024 * 1024)
#define SR_MAX_JSON_DEPTH 64
#define SR_ERROR_MESSAGE_LEN 256

/* Error classes.  decode_sql.c maps each to a SQLSTATE; keep README in step. */
typedef enum sr_errclass
{
	SR_OK = 0,
	SR_ERR_MESSAGE_TOO_LARGE,	 /* 54000 program_limit_exceeded */
	SR_ERR_NESTING_TOO_DEEP,	 /* 54001 statement_too_complex */
	SR_ERR_INVALID_JSON,		 /* 22032 invalid_json_text */
	SR_ERR_INVALID_UTF8,		 /* 22021 character_not_in_repertoire */
	SR_ERR_NUL_CHARACTER,		 /* 22P05 untranslatable_character */
	SR_ERR_WRONG_TYPE,			 /* 22023 invalid_parameter_value */
	SR_ERR_MISSING_FIELD,		 /* 2203A sql_json_member_not_found */
	SR_ERR_OUT_OF_RANGE,		 /* 22003 numeric_value_out_of_range */
	SR_ERR_INVALID_VALUE,		 /* 22P02 invalid_text_representation */
	SR_ERR_INVALID_TIMESTAMP,	 /* 22007 invalid_datetime_format */
	SR_ERR_UNSUPPORTED_VERSION,	 /* 0A000 feature_not_supported */
	SR_ERR_UNKNOWN_OPERATION,	 /* 0A000 feature_not_supported */
	SR_ERR_OUT_OF_MEMORY,		 /* 53200 out_of_memory */
	SR_ERR__COUNT
} sr_errclass;

typedef struct sr_error
{
	sr_errclass cls;
	char message[SR_ERROR_MESSAGE_LEN];
} sr_error;

/* One Kafka message header.  value == NULL is a header with a null value. */
typedef struct sr_header
{
	const char *name;
	size_t name_len;
	const void *value;
	size_t value_len;
} sr_header;

typedef enum sr_decode_status
{
	SR_DECODE_ERROR = -1,		/* err is filled in */
	SR_DECODE_SKIP = 0,			/* a valid message that asks for no job */
	SR_DECODE_JOB = 1			/* job is filled in */
} sr_decode_status;

/* Where a job's fields were read from. */
typedef enum sr_job_source
{
	SR_SOURCE_BODY = 0,
	SR_SOURCE_HEADERS = 1
} sr_job_source;

/* A task flag as Sentry passes it on: None, False or True. */
typedef enum sr_flag
{
	SR_FLAG_NULL = -1,
	SR_FLAG_FALSE = 0,
	SR_FLAG_TRUE = 1
} sr_flag;

/*
 * A post-process job, the arguments of Sentry's post_process_group task.
 * version and operation are also set for SR_DECODE_SKIP.  A NULL string
 * pointer is SQL NULL.  Values are kept as the message gives them: the
 * event id is not normalised, and group_states is the JSON text of the
 * value as sent.
 */
typedef struct sr_job
{
	int			version;
	const char *operation;		/* static storage */
	bool		skip_consume;	/* why an insert was skipped */
	sr_job_source source;
	int64_t		project_id;
	bool		has_group_id;
	int64_t		group_id;
	const char *event_id;		/* as sent (any string) */
	const char *primary_hash;
	const char *group_states;	/* the value's JSON text, or NULL */
	const char *occurrence_id;
	const char *queue;			/* NULL: none named; the stream's default applies */
	const char *cache_key;		/* e:{event_id}:{project_id} */
	sr_flag		is_new;
	sr_flag		is_regression;
	sr_flag		is_new_group_environment;
} sr_job;

/* A decoded commit log entry.  Timestamps are microseconds since 1970. */
typedef struct sr_commit
{
	const char *topic;
	int32_t		partition;
	const char *group;
	int64_t		offset;
	bool		has_orig_message_ts;
	int64_t		orig_message_ts_us;
	bool		has_received_p99;
	int64_t		received_p99_us;
} sr_commit;

typedef struct sr_decoder sr_decoder;

/* Returns NULL only when out of memory. */
extern sr_decoder *sr_decoder_create(size_t max_message_bytes);
extern void sr_decoder_destroy(sr_decoder *dec);
extern void sr_decoder_set_max_message_bytes(sr_decoder *dec, size_t max);

/*
 * Decode an events-topic message.  With complete, valid task headers the
 * body is not read at all; otherwise the body is parsed.
 */
extern sr_decode_status sr_decode_event(sr_decoder *dec,
										const void *value, size_t value_len,
										const sr_header *headers, size_t nheaders,
										sr_job *job, sr_error *err);

/* Decode a commit-log message (JSON or legacy integer value). */
extern sr_decode_status sr_decode_commit_log(sr_decoder *dec,
											 const void *key, size_t key_len,
											 const void *value, size_t value_len,
											 const sr_header *headers, size_t nheaders,
											 sr_commit *commit, sr_error *err);

/* Short stable name of an error class, e.g. "invalid_json". */
extern const char *sr_errclass_name(sr_errclass cls);

/* Five-character SQLSTATE of an error class, e.g. "22032". */
extern const char *sr_errclass_sqlstate(sr_errclass cls);

/* True if buf[0..len) is well-formed UTF-8 (no overlongs, no surrogates). */
extern bool sr_utf8_valid(const unsigned char *buf, size_t len);

#endif							/* SR_DECODE_H */
