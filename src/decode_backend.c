/*
 * decode_backend.c - the decoders' PostgreSQL side, shared by the SQL
 * wrappers (decode_sql.c) and the relay worker: the one decoder of each
 * process, kept at the current sentry_relay.max_message_size; the SQLSTATE
 * and hint of each decoder error class; and the decoders' Unix timestamps
 * as timestamptz.  Declared in decode_sql.h.
 */
#include "postgres.h"

#include "datatype/timestamp.h"
#include "utils/elog.h"

#include "decode.h"
#include "decode_sql.h"
#include "guc.h"

/* One decoder per backend, malloc'd by the pure C side, never freed. */
static sr_decoder *sr_backend_decoder = NULL;

sr_decoder *
sr_get_decoder(void)
{
	if (sr_backend_decoder == NULL)
	{
		sr_backend_decoder = sr_decoder_create((size_t) sr_max_message_size);
		if (sr_backend_decoder == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory creating a message decoder")));
	}
	sr_decoder_set_max_message_bytes(sr_backend_decoder, (size_t) sr_max_message_size);
	return sr_backend_decoder;
}

int
sr_errclass_errcode(sr_errclass cls)
{
	const char *s = sr_errclass_sqlstate(cls);

	return MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]);
}

/* A hint that tells the user what to do about an error class. */
const char *
sr_errclass_hint(sr_errclass cls, bool commit_log)
{
	switch (cls)
	{
		case SR_ERR_MESSAGE_TOO_LARGE:
			return commit_log ? "A commit log message is a short key and value."
				: "Raise sentry_relay.max_message_size if messages this large are legitimate.";
		case SR_ERR_NESTING_TOO_DEEP:
			return "JSON may nest at most 64 levels deep.";
		case SR_ERR_INVALID_JSON:
			return commit_log
				? "A commit log value is JSON such as {\"offset\": 42, \"orig_message_ts\": 1707857566.8} or a plain integer."
				: "An event message is a JSON array such as [2, \"insert\", {...}, {...}].";
		case SR_ERR_INVALID_UTF8:
			return "Messages must be encoded in UTF-8.";
		case SR_ERR_NUL_CHARACTER:
			return "PostgreSQL text cannot hold NUL characters; the producer must not send them.";
		case SR_ERR_WRONG_TYPE:
		case SR_ERR_MISSING_FIELD:
		case SR_ERR_INVALID_VALUE:
			return commit_log
				? "Compare the message with Snuba's commit log format in the sentry_relay README."
				: "Compare the message with Sentry's eventstream format in the sentry_relay README.";
		case SR_ERR_OUT_OF_RANGE:
			return "Offsets, ids and partitions must be non-negative integers that fit in 64 bits; timestamps must lie between 1970 and 9999.";
		case SR_ERR_INVALID_TIMESTAMP:
			return "Timestamps must be in UTC, like 2021-09-20T12:34:56.789000Z.";
		case SR_ERR_UNSUPPORTED_VERSION:
			return "sentry_relay decodes event message versions 1 and 2.";
		case SR_ERR_UNKNOWN_OPERATION:
			return "The sentry_relay README lists the operations of each version.";
		default:
			return NULL;
	}
}

/* Microseconds since 1970 to a PostgreSQL timestamptz. */
TimestampTz
sr_unix_us_to_timestamptz(int64 us)
{
	return (TimestampTz) (us - (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);
}
