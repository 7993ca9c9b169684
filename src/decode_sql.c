/*
 * decode_sql.c - SQL-callable wrappers around the pure decoders:
 *
 *   sentry_relay.decode_event_message(value bytea, headers jsonb,
 *                                     default_queue text) -> jsonb
 *   sentry_relay.decode_commit_log_message(key, value, headers) -> record
 *
 * Decoder errors become ereport(ERROR) with the SQLSTATE and hint of their
 * class.  The decoder itself and those mappings, which the relay worker uses
 * too, are in decode_backend.c.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "decode.h"
#include "decode_sql.h"

PG_FUNCTION_INFO_V1(sr_decode_event_message);
PG_FUNCTION_INFO_V1(sr_decode_commit_log_message);

static void
sr_raise(const sr_error *err, bool commit_log)
{
	const char *hint = sr_errclass_hint(err->cls, commit_log);

	ereport(ERROR,
			(errcode(sr_errclass_errcode(err->cls)),
			 errmsg("%s", err->message),
			 hint ? errhint("%s", hint) : 0));
}

static void
sr_require_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"%s\" must not be null", name),
				 errhint("Pass the Kafka message's %s as bytea.", name)));
}

/*
 * Convert a jsonb object {"name": "value" | null, ...} to an array of
 * headers.  Names and values point into the jsonb datum.
 */
static sr_header *
sr_headers_from_jsonb(Jsonb *jb, size_t *nheaders)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	sr_header  *hs;
	size_t		n = 0;

	*nheaders = 0;
	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("headers must be a jsonb object of header names to values"),
				 errhint("For example '{\"version\": \"2\", \"operation\": \"insert\"}'.")));
	hs = palloc0(sizeof(sr_header) * Max(JB_ROOT_COUNT(jb), 1));
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			hs[n].name = v.val.string.val;
			hs[n].name_len = (size_t) v.val.string.len;
		}
		else if (tok == WJB_VALUE)
		{
			if (v.type == jbvString)
			{
				hs[n].value = v.val.string.val;
				hs[n].value_len = (size_t) v.val.string.len;
			}
			else if (v.type != jbvNull)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("header \"%.*s\" must be a string or null",
								(int) hs[n].name_len, hs[n].name),
						 errhint("Kafka header values are bytes; pass them as JSON strings, e.g. \"1\" rather than 1.")));
			n++;
		}
	}
	*nheaders = n;
	return hs;
}

static void
sr_json_key(StringInfo buf, const char *key, bool first)
{
	if (!first)
		appendStringInfoChar(buf, ',');
	escape_json(buf, key);
	appendStringInfoChar(buf, ':');
}

static void
sr_json_text_or_null(StringInfo buf, const char *s)
{
	if (s == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, s);
}

static void
sr_json_flag(StringInfo buf, const char *key, sr_flag f)
{
	sr_json_key(buf, key, false);
	appendStringInfoString(buf, f == SR_FLAG_NULL ? "null" : f == SR_FLAG_TRUE ? "true" : "false");
}

Datum
sr_decode_event_message(PG_FUNCTION_ARGS)
{
	bytea	   *value = NULL;
	sr_header  *headers = NULL;
	size_t		nheaders = 0;
	const char *default_queue = "post_process_errors";
	sr_job		job;
	sr_error	err;
	sr_decode_status st;
	StringInfoData buf;

	/* a NULL value (a Kafka tombstone) may still be decoded from headers */
	if (!PG_ARGISNULL(0))
		value = PG_GETARG_BYTEA_PP(0);
	if (!PG_ARGISNULL(1))
		headers = sr_headers_from_jsonb(PG_GETARG_JSONB_P(1), &nheaders);
	if (PG_NARGS() > 2)
	{
		sr_require_arg(fcinfo, 2, "default_queue");
		default_queue = text_to_cstring(PG_GETARG_TEXT_PP(2));
	}

	st = sr_decode_event(sr_get_decoder(), value ? VARDATA_ANY(value) : NULL,
						 value ? VARSIZE_ANY_EXHDR(value) : 0, headers, nheaders,
						 &job, &err);
	if (st == SR_DECODE_ERROR)
		sr_raise(&err, false);
	if (st == SR_DECODE_SKIP)
		PG_RETURN_NULL();

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	sr_json_key(&buf, "version", true);
	appendStringInfo(&buf, "%d", job.version);
	sr_json_key(&buf, "operation", false);
	escape_json(&buf, job.operation);
	sr_json_key(&buf, "source", false);
	escape_json(&buf, job.source == SR_SOURCE_HEADERS ? "headers" : "body");
	sr_json_key(&buf, "project_id", false);
	appendStringInfo(&buf, INT64_FORMAT, job.project_id);
	sr_json_key(&buf, "group_id", false);
	if (job.has_group_id)
		appendStringInfo(&buf, INT64_FORMAT, job.group_id);
	else
		appendStringInfoString(&buf, "null");
	sr_json_key(&buf, "event_id", false);
	escape_json(&buf, job.event_id);
	sr_json_key(&buf, "primary_hash", false);
	sr_json_text_or_null(&buf, job.primary_hash);
	sr_json_flag(&buf, "is_new", job.is_new);
	sr_json_flag(&buf, "is_regression", job.is_regression);
	sr_json_flag(&buf, "is_new_group_environment", job.is_new_group_environment);
	sr_json_key(&buf, "group_states", false);
	/* the value's JSON text as sent, which the decoder found jsonb can hold */
	appendStringInfoString(&buf, job.group_states ? job.group_states : "null");
	sr_json_key(&buf, "occurrence_id", false);
	sr_json_text_or_null(&buf, job.occurrence_id);
	sr_json_key(&buf, "queue", false);
	escape_json(&buf, job.queue ? job.queue : default_queue);
	sr_json_key(&buf, "cache_key", false);
	escape_json(&buf, job.cache_key);
	appendStringInfoChar(&buf, '}');

	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

Datum
sr_decode_commit_log_message(PG_FUNCTION_ARGS)
{
	bytea	   *key;
	bytea	   *value;
	sr_header  *headers = NULL;
	size_t		nheaders = 0;
	sr_commit	c;
	sr_error	err;
	TupleDesc	tupdesc;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	sr_require_arg(fcinfo, 0, "key");
	sr_require_arg(fcinfo, 1, "value");
	key = PG_GETARG_BYTEA_PP(0);
	value = PG_GETARG_BYTEA_PP(1);
	if (!PG_ARGISNULL(2))
		headers = sr_headers_from_jsonb(PG_GETARG_JSONB_P(2), &nheaders);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	if (sr_decode_commit_log(sr_get_decoder(), VARDATA_ANY(key),
							 VARSIZE_ANY_EXHDR(key), VARDATA_ANY(value),
							 VARSIZE_ANY_EXHDR(value), headers, nheaders,
							 &c, &err) == SR_DECODE_ERROR)
		sr_raise(&err, true);

	values[0] = CStringGetTextDatum(c.topic);
	values[1] = Int32GetDatum(c.partition);
	values[2] = CStringGetTextDatum(c.group);
	values[3] = Int64GetDatum(c.offset);
	if (c.has_orig_message_ts)
		values[4] = TimestampTzGetDatum(sr_unix_us_to_timestamptz(c.orig_message_ts_us));
	else
		nulls[4] = true;
	if (c.has_received_p99)
		values[5] = TimestampTzGetDatum(sr_unix_us_to_timestamptz(c.received_p99_us));
	else
		nulls[5] = true;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
