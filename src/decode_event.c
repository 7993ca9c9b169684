/*
 * decode_event.c - decode an events-topic message into a post-process job.
 *
 * The value is a JSON array [version, operation, ...].  Version 1 and 2
 * inserts become jobs; replacement operations and skip_consume inserts are
 * skipped.  Current producers repeat the task fields in Kafka headers: when
 * those are present and complete the body is never read, and when they are
 * incomplete or invalid the body is decoded instead, as Sentry does.  The
 * rules, and where they differ from Sentry's, are in docs/decoding.md.
 *
 * A body is first skimmed (json_skim.c) and, in the plain cases, decoded
 * straight from its text (decode_fast.c); otherwise json-c parses it, and
 * its result and errors are the reference.  This file is the entry point:
 * it calls the fast path and the shared helpers (decode_common.c,
 * decode_python.c), and none of them calls back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode_internal.h"
#include "json_text.h"
#include "json_skim.h"

/* A member that Sentry reads as event_data[name]: it must be there. */
static bool
sr_event_required(struct json_object *obj, const char *where,
				  const char *field, struct json_object **v, sr_error *err)
{
	if (!json_object_object_get_ex(obj, field, v))
	{
		sr_set_error(err, SR_ERR_MISSING_FIELD,
					 "%s has no field \"%s\"", where, field);
		return false;
	}
	return true;
}

/*
 * The value of a string member the job keeps, read from its own text (the
 * last member called field of element index): json-c would turn an unpaired
 * surrogate into U+FFFD, which no longer says what was sent.
 */
static bool
sr_event_text(sr_decoder *dec, const char *value, size_t value_len, int index,
			  const char *field, sr_aoff *off, sr_error *err)
{
	sr_skim_span sp;
	size_t		len;
	int			problem;

	if (!sr_json_member_span(value, value_len, index, field, &sp))
	{
		sr_set_error(err, SR_ERR_INVALID_JSON,
					 "field \"%s\" could not be located in the message", field);
		return false;
	}
	/* the value is never longer than its text: reserve that, then shrink */
	*off = dec->arena_len;
	if (!sr_arena_append(dec, value + sp.start, sp.len, err))
		return false;
	problem = sr_json_string_value(value + sp.start, sp.len, dec->arena + *off, &len);
	if (problem == SR_JS_NUL)
	{
		sr_set_error(err, SR_ERR_NUL_CHARACTER,
					 "field \"%s\" contains a NUL character", field);
		return false;
	}
	if (problem != SR_JS_OK)
	{
		sr_set_error(err, SR_ERR_INVALID_UTF8,
					 "field \"%s\" holds an unpaired surrogate escape, which is not Unicode text", field);
		return false;
	}
	dec->arena_len = *off + len;
	return sr_arena_append(dec, "", 1, err);
}

/* A string or null (JSON null, or absent for an optional member). */
static bool
sr_event_string_or_null(sr_decoder *dec, const char *value, size_t value_len,
						int index, struct json_object *v, const char *field,
						sr_aoff *off, sr_error *err)
{
	*off = SR_ANULL;
	if (v == NULL)
		return true;
	if (!json_object_is_type(v, json_type_string))
	{
		sr_set_error(err, SR_ERR_WRONG_TYPE,
					 "field \"%s\" must be a string or null, not %s", field,
					 json_type_to_name(json_object_get_type(v)));
		return false;
	}
	return sr_event_text(dec, value, value_len, index, field, off, err);
}

/*
 * An integer that fits in 64 bits, negative or not (Sentry checks no sign),
 * read from its own text: json-c clamps integers beyond 64 bits.
 */
static bool
sr_event_int64(const char *value, size_t value_len, struct json_object *v,
			   const char *field, int64_t *out, sr_error *err)
{
	sr_skim_span sp;
	bool		fits,
				zero;

	if (v == NULL || !json_object_is_type(v, json_type_int))
	{
		sr_set_error(err, SR_ERR_WRONG_TYPE,
					 "field \"%s\" must be an integer, not %s", field,
					 v == NULL ? "null" : json_type_to_name(json_object_get_type(v)));
		return false;
	}
	if (!sr_json_member_span(value, value_len, 2, field, &sp) ||
		!sr_py_int(value + sp.start, sp.len, out, &fits, &zero))
	{
		sr_set_error(err, SR_ERR_INVALID_JSON,
					 "field \"%s\" could not be located in the message", field);
		return false;
	}
	if (!fits)
	{
		sr_set_error(err, SR_ERR_OUT_OF_RANGE,
					 "field \"%s\" is out of range: it does not fit in 64 bits",
					 field);
		return false;
	}
	return true;
}

/* A task flag: null stays None, anything else is its Python truth value. */
static sr_flag
sr_event_flag(struct json_object *v)
{
	if (v == NULL)
		return SR_FLAG_NULL;
	return sr_json_truthy(v) ? SR_FLAG_TRUE : SR_FLAG_FALSE;
}

/*
 * group_states, passed on as sent: the text of the task state's last
 * "group_states" member, which must be something jsonb can hold.
 */
static bool
sr_event_group_states(sr_decoder *dec, const char *value, size_t len,
					  sr_aoff *off, sr_error *err)
{
	sr_skim_span sp;

	if (!sr_json_member_span(value, len, 3, "group_states", &sp))
	{
		sr_set_error(err, SR_ERR_INVALID_JSON,
					 "the task state's \"group_states\" could not be located in the message");
		return false;
	}
	if (!sr_json_jsonb_safe(value + sp.start, sp.len))
	{
		sr_set_error(err, SR_ERR_INVALID_VALUE,
					 "field \"group_states\" cannot be stored as jsonb (a \\u0000 or unpaired surrogate escape, or a number beyond numeric's range)");
		return false;
	}
	return sr_arena_push(dec, value + sp.start, sp.len, off, err);
}

/*
 * The insert payload, [version, "insert", event_data, task_state], read as
 * Sentry's get_task_kwargs_for_insert reads it.  value is the message's
 * original text, for the group_states value.
 */
static sr_decode_status
sr_event_insert_from_json(sr_decoder *dec, struct json_object *root,
						  const char *value, size_t value_len,
						  sr_job *job, sr_job_offsets *o, sr_error *err)
{
	static const char *const flags[] = {
		"is_new", "is_regression", "is_new_group_environment"
	};
	sr_flag    *flag_out[3];
	size_t		n = json_object_array_length(root);
	struct json_object *ed,
			   *ts,
			   *v;

	if (n < 3)
	{
		sr_set_error(err, SR_ERR_MISSING_FIELD, "insert message has no event data");
		return SR_DECODE_ERROR;
	}
	if (n < 4)
	{
		sr_set_error(err, SR_ERR_MISSING_FIELD, "insert message has no task state");
		return SR_DECODE_ERROR;
	}
	if (n > 4)
	{
		sr_set_error(err, SR_ERR_INVALID_VALUE,
					 "insert message has %zu elements, not 4 (version, operation, event data, task state)",
					 n);
		return SR_DECODE_ERROR;
	}
	ed = json_object_array_get_idx(root, 2);
	ts = json_object_array_get_idx(root, 3);
	if (ts == NULL || !json_object_is_type(ts, json_type_object))
	{
		sr_set_error(err, SR_ERR_WRONG_TYPE,
					 "insert task state must be a JSON object, not %s",
					 ts == NULL ? "null" : json_type_to_name(json_object_get_type(ts)));
		return SR_DECODE_ERROR;
	}

	/* as in Sentry, a truthy skip_consume short-circuits everything else */
	if (json_object_object_get_ex(ts, "skip_consume", &v) && sr_json_truthy(v))
	{
		job->skip_consume = true;
		return SR_DECODE_SKIP;
	}
	if (ed == NULL || !json_object_is_type(ed, json_type_object))
	{
		sr_set_error(err, SR_ERR_WRONG_TYPE,
					 "insert event data must be a JSON object, not %s",
					 ed == NULL ? "null" : json_type_to_name(json_object_get_type(ed)));
		return SR_DECODE_ERROR;
	}

	if (!sr_event_required(ed, "event data", "event_id", &v, err))
		return SR_DECODE_ERROR;
	if (v == NULL || !json_object_is_type(v, json_type_string))
	{
		sr_set_error(err, SR_ERR_WRONG_TYPE,
					 "field \"event_id\" must be a string, not %s",
					 v == NULL ? "null" : json_type_to_name(json_object_get_type(v)));
		return SR_DECODE_ERROR;
	}
	if (!sr_event_text(dec, value, value_len, 2, "event_id", &o->event_id, err))
		return SR_DECODE_ERROR;
	if (!sr_event_required(ed, "event data", "project_id", &v, err) ||
		!sr_event_int64(value, value_len, v, "project_id", &job->project_id, err))
		return SR_DECODE_ERROR;
	if (!sr_event_required(ed, "event data", "group_id", &v, err))
		return SR_DECODE_ERROR;
	if (v != NULL)
	{
		if (!sr_event_int64(value, value_len, v, "group_id", &job->group_id, err))
			return SR_DECODE_ERROR;
		job->has_group_id = true;
	}
	if (!sr_event_required(ed, "event data", "primary_hash", &v, err) ||
		!sr_event_string_or_null(dec, value, value_len, 2, v, "primary_hash",
								 &o->primary_hash, err))
		return SR_DECODE_ERROR;
	if (!json_object_object_get_ex(ed, "occurrence_id", &v))
		v = NULL;
	if (!sr_event_string_or_null(dec, value, value_len, 2, v, "occurrence_id",
								 &o->occurrence_id, err))
		return SR_DECODE_ERROR;

	flag_out[0] = &job->is_new;
	flag_out[1] = &job->is_regression;
	flag_out[2] = &job->is_new_group_environment;
	for (int f = 0; f < 3; f++)
	{
		if (!sr_event_required(ts, "task state", flags[f], &v, err))
			return SR_DECODE_ERROR;
		*flag_out[f] = sr_event_flag(v);
	}
	if (!json_object_object_get_ex(ts, "queue", &v))
		v = NULL;
	if (!sr_event_string_or_null(dec, value, value_len, 3, v, "queue", &o->queue, err))
		return SR_DECODE_ERROR;
	if (json_object_object_get_ex(ts, "group_states", &v) && v != NULL &&
		!sr_event_group_states(dec, value, value_len, &o->group_states, err))
		return SR_DECODE_ERROR;
	return SR_DECODE_JOB;
}

#define SR_SKIM_MIN_VALUE 16	/* shorter values are not worth dropping */
#define SR_SKIM_MAX_DROP 64

/*
 * Parse a copy of an event message in which the bulky event-data values the
 * decoder never reads (found by the skim) are null.  NULL if json-c rejects
 * the copy; the caller then parses the original, for json-c's own error.
 */
static struct json_object *
sr_event_parse_reduced(sr_decoder *dec, const char *value, size_t len,
					   const sr_skim_span *drop, int ndrop)
{
	sr_error	ignored;
	size_t		from = 0,
				n = 0;

	if (dec->skim_cap < len)
	{
		char	   *b = realloc(dec->skim_buf, len);

		if (b == NULL)
			return NULL;
		dec->skim_buf = b;
		dec->skim_cap = len;
	}
	for (int i = 0; i < ndrop; i++)
	{
		memcpy(dec->skim_buf + n, value + from, drop[i].start - from);
		n += drop[i].start - from;
		memcpy(dec->skim_buf + n, "null", 4);
		n += 4;
		from = drop[i].start + drop[i].len;
	}
	memcpy(dec->skim_buf + n, value + from, len - from);
	n += len - from;
	return sr_parse_json(dec, "event message", dec->skim_buf, n, &ignored);
}

static void sr_event_reset(sr_decoder *dec, sr_job *job, sr_job_offsets *o);

/* The message version, as Sentry's int(payload[0]) reads it. */
static bool
sr_event_version(struct json_object *v, int *version, sr_error *err)
{
	int64_t		ver = 0;
	bool		fits;
	char		ex[64];

	if (!sr_py_int_json(v, &ver, &fits))
	{
		if (v != NULL && json_object_is_type(v, json_type_string))
		{
			sr_excerpt(ex, sizeof(ex), json_object_get_string(v),
					   (size_t) json_object_get_string_len(v));
			sr_set_error(err, SR_ERR_UNSUPPORTED_VERSION,
						 "unsupported event message version \"%s\"", ex);
		}
		else
			sr_set_error(err, SR_ERR_WRONG_TYPE,
						 "event message version must be an integer, not %s",
						 v == NULL ? "null" : json_type_to_name(json_object_get_type(v)));
		return false;
	}
	if (!fits || (ver != 1 && ver != 2))
	{
		const char *text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);

		sr_excerpt(ex, sizeof(ex), text, strlen(text));
		sr_set_error(err, SR_ERR_UNSUPPORTED_VERSION,
					 "unsupported event message version %s", ex);
		return false;
	}
	*version = (int) ver;
	return true;
}

static sr_decode_status
sr_event_from_body(sr_decoder *dec, const char *value, size_t len,
				   sr_job *job, sr_job_offsets *o, sr_error *err)
{
	struct json_object *root;
	sr_decode_status st;
	bool		skimmed;
	const char *op;
	size_t		oplen;
	char		ex[64];

	if (value == NULL)
	{
		sr_set_error(err, SR_ERR_MISSING_FIELD,
					 "event message has no value and no complete task headers");
		return SR_DECODE_ERROR;
	}
	if (len > dec->max_message_bytes)
	{
		sr_set_error(err, SR_ERR_MESSAGE_TOO_LARGE,
					 "event message of %zu bytes exceeds the limit of %zu bytes",
					 len, dec->max_message_bytes);
		return SR_DECODE_ERROR;
	}
	/*
	 * The skim checks the whole message (strict JSON, well-formed UTF-8, no
	 * NUL) and finds what the decoder reads; the fast path decodes the plain
	 * cases from that alone.  What it declines is parsed by json-c: a copy
	 * without the bulky values, or failing that the original text.  Only a
	 * message the skim declines needs sr_check_text, for its error.
	 */
	root = NULL;
	skimmed = false;
	if (dec->skim_min > 0 && len >= dec->skim_min)
	{
		sr_skim_span drop[SR_SKIM_MAX_DROP];
		sr_skim_pick pick;
		int			ndrop;

		pick.names[0] = sr_fast_event_members;
		pick.names[1] = sr_fast_task_members;
		if (sr_json_skim(value, len, sr_fast_event_members, SR_SKIM_MIN_VALUE,
						 drop, SR_SKIM_MAX_DROP, &ndrop, &pick))
		{
			skimmed = true;
			st = sr_event_fast(dec, value, &pick, job, o);
			if (st != SR_DECODE_ERROR)
				return st;
			sr_event_reset(dec, job, o);
			if (ndrop > 0)
				root = sr_event_parse_reduced(dec, value, len, drop, ndrop);
		}
	}
	if (!skimmed && !sr_check_text("event message", value, len, err))
		return SR_DECODE_ERROR;
	if (root == NULL)
		root = sr_parse_json(dec, "event message", value, len, err);
	if (root == NULL)
		return SR_DECODE_ERROR;

	st = SR_DECODE_ERROR;
	if (!json_object_is_type(root, json_type_array))
	{
		sr_set_error(err, SR_ERR_WRONG_TYPE,
					 "event message must be a JSON array, not %s",
					 json_type_to_name(json_object_get_type(root)));
		goto done;
	}
	if (json_object_array_length(root) < 1)
	{
		sr_set_error(err, SR_ERR_MISSING_FIELD,
					 "event message must hold at least a version and an operation");
		goto done;
	}
	if (!sr_event_version(json_object_array_get_idx(root, 0), &job->version, err))
		goto done;
	if (json_object_array_length(root) < 2)
	{
		sr_set_error(err, SR_ERR_MISSING_FIELD,
					 "event message must hold at least a version and an operation");
		goto done;
	}
	if (!sr_json_string(json_object_array_get_idx(root, 1), "operation", &op,
						&oplen, err))
		goto done;
	job->operation = sr_event_lookup_op(job->version, op, oplen);
	if (job->operation == NULL)
	{
		sr_excerpt(ex, sizeof(ex), op, oplen);
		sr_set_error(err, SR_ERR_UNKNOWN_OPERATION,
					 "unknown operation \"%s\" for event message version %d",
					 ex, job->version);
		goto done;
	}
	if (strcmp(job->operation, "insert") != 0)
		st = SR_DECODE_SKIP;
	else
		st = sr_event_insert_from_json(dec, root, value, len, job, o, err);

done:
	json_object_put(root);
	return st;
}

/* A header's value as Python's int(bytes) reads it, within 64 bits. */
static bool
sr_header_int(const sr_header *h, int64_t *out)
{
	bool		fits,
				zero;

	return h != NULL && h->value != NULL &&
		sr_py_int(h->value, h->value_len, out, &fits, &zero) && fits;
}

/* A flag header, as Sentry's decode_bool: bool(int(value.decode())). */
static bool
sr_header_bool(const sr_header *h, bool *out)
{
	int64_t		ignored;
	bool		fits,
				zero;

	if (h == NULL || h->value == NULL ||
		!sr_py_int(h->value, h->value_len, &ignored, &fits, &zero))
		return false;
	*out = !zero;
	return true;
}

/* An optional text header: absent or null is SQL NULL. */
static bool
sr_header_opt_text(sr_decoder *dec, const sr_header *h, sr_aoff *off)
{
	sr_error	ignored;

	*off = SR_ANULL;
	if (h == NULL || h->value == NULL)
		return true;
	return sr_check_text("header", h->value, h->value_len, &ignored) &&
		sr_arena_push(dec, h->value, h->value_len, off, &ignored);
}

/*
 * The group_states header, as Sentry's decode_optional_list_str: a value
 * that is not UTF-8 sends the decoder to the body (false); one that is not a
 * JSON list gives NULL, as does one that jsonb cannot hold.
 */
static bool
sr_header_group_states(sr_decoder *dec, const sr_header *h, sr_aoff *off)
{
	const char *p;
	size_t		len,
				i;
	int			ndrop;
	bool		is_list = false;
	sr_error	ignored;

	*off = SR_ANULL;
	if (h == NULL || h->value == NULL)
		return true;
	p = h->value;
	len = h->value_len;
	if (!sr_utf8_valid((const unsigned char *) p, len))
		return false;
	if (memchr(p, '\0', len) != NULL)
		return true;			/* not JSON */
	for (i = 0; i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'); i++)
		;
	if (i < len && p[i] == '[')
	{
		if (dec->skim_min > 0 &&
			sr_json_skim(p, len, NULL, 0, NULL, 0, &ndrop, NULL))
			is_list = true;		/* the skim refuses what jsonb refuses */
		else
		{
			size_t		at;
			const char *why;

			/* an array ('['), if it is strict JSON, that jsonb can hold */
			is_list = sr_json_validate(p, len, SR_MAX_JSON_DEPTH, &at, &why) == SR_JV_OK &&
				sr_json_jsonb_safe(p, len);
		}
	}
	if (is_list)
		return sr_arena_push(dec, p, len, off, &ignored);
	return true;
}

/*
 * Decode from the task headers alone, as Sentry's
 * get_task_kwargs_for_message_from_headers.  Returns SR_DECODE_JOB or
 * SR_DECODE_SKIP when the headers are complete and valid, and
 * SR_DECODE_ERROR when the body must be decoded instead (err untouched).
 */
static sr_decode_status
sr_event_from_headers(sr_decoder *dec, const sr_header *hs, size_t n,
					  sr_job *job, sr_job_offsets *o)
{
	const sr_header *h;
	int64_t		version;
	bool		skip,
				b[3];

	if (!sr_header_int(sr_find_header(hs, n, "version"), &version) ||
		(version != 1 && version != 2))
		return SR_DECODE_ERROR;
	h = sr_find_header(hs, n, "operation");
	if (h == NULL || h->value == NULL)
		return SR_DECODE_ERROR;
	job->version = (int) version;
	job->operation = sr_event_lookup_op(job->version, h->value, h->value_len);
	if (job->operation == NULL)
		return SR_DECODE_ERROR;
	job->source = SR_SOURCE_HEADERS;
	if (strcmp(job->operation, "insert") != 0)
		return SR_DECODE_SKIP;

	if (!sr_header_opt_text(dec, sr_find_header(hs, n, "primary_hash"),
							&o->primary_hash))
		return SR_DECODE_ERROR;
	h = sr_find_header(hs, n, "event_id");
	if (h == NULL || h->value == NULL ||
		!sr_header_opt_text(dec, h, &o->event_id))
		return SR_DECODE_ERROR;
	h = sr_find_header(hs, n, "group_id");
	if (h != NULL && h->value != NULL)
	{
		if (!sr_header_int(h, &job->group_id))
			return SR_DECODE_ERROR;
		job->has_group_id = true;
	}
	if (!sr_header_int(sr_find_header(hs, n, "project_id"), &job->project_id) ||
		!sr_header_opt_text(dec, sr_find_header(hs, n, "occurrence_id"),
							&o->occurrence_id))
		return SR_DECODE_ERROR;
	if (!sr_header_bool(sr_find_header(hs, n, "skip_consume"), &skip) ||
		!sr_header_bool(sr_find_header(hs, n, "is_new"), &b[0]) ||
		!sr_header_bool(sr_find_header(hs, n, "is_regression"), &b[1]) ||
		!sr_header_bool(sr_find_header(hs, n, "is_new_group_environment"), &b[2]))
		return SR_DECODE_ERROR;
	job->is_new = b[0] ? SR_FLAG_TRUE : SR_FLAG_FALSE;
	job->is_regression = b[1] ? SR_FLAG_TRUE : SR_FLAG_FALSE;
	job->is_new_group_environment = b[2] ? SR_FLAG_TRUE : SR_FLAG_FALSE;
	if (!sr_header_group_states(dec, sr_find_header(hs, n, "group_states"),
								&o->group_states))
		return SR_DECODE_ERROR;

	/* queue: optional, but a header present with a null value raises */
	h = sr_find_header(hs, n, "queue");
	if (h != NULL && (h->value == NULL || !sr_header_opt_text(dec, h, &o->queue)))
		return SR_DECODE_ERROR;
	if (skip)
	{
		job->skip_consume = true;
		return SR_DECODE_SKIP;
	}
	return SR_DECODE_JOB;
}

static void
sr_event_reset(sr_decoder *dec, sr_job *job, sr_job_offsets *o)
{
	sr_arena_reset(dec);
	memset(job, 0, sizeof(*job));
	job->is_new = job->is_regression = job->is_new_group_environment = SR_FLAG_NULL;
	o->event_id = o->primary_hash = o->group_states = o->occurrence_id =
		o->queue = SR_ANULL;
}

/* Write v in decimal at p; returns the number of characters. */
static size_t
sr_event_format_int(char *p, int64_t v)
{
	char		tmp[24];
	size_t		n = 0,
				k = 0;
	uint64_t	u = v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;

	do
	{
		tmp[n++] = (char) ('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0)
		p[k++] = '-';
	for (size_t i = 0; i < n; i++)
		p[k++] = tmp[n - 1 - i];
	return k;
}

sr_decode_status
sr_decode_event(sr_decoder *dec, const void *value, size_t value_len,
				const sr_header *headers, size_t nheaders, sr_job *job,
				sr_error *err)
{
	sr_job_offsets o;
	sr_decode_status st = SR_DECODE_ERROR;
	sr_aoff		cache_key;
	char		num[24];
	size_t		numlen;

	err->cls = SR_OK;
	err->message[0] = '\0';
	sr_event_reset(dec, job, &o);

	if (nheaders > 0)
		st = sr_event_from_headers(dec, headers, nheaders, job, &o);
	if (st == SR_DECODE_ERROR)
	{
		sr_event_reset(dec, job, &o);
		st = sr_event_from_body(dec, value, value_len, job, &o, err);
	}
	if (st != SR_DECODE_JOB)
		return st;

	/* e:{event_id}:{project_id}, as Sentry's cache_key_for_event */
	numlen = sr_event_format_int(num, job->project_id);
	cache_key = dec->arena_len;
	if (!sr_arena_append(dec, "e:", 2, err) ||
		!sr_arena_append(dec, sr_arena_str(dec, o.event_id),
						 strlen(sr_arena_str(dec, o.event_id)), err) ||
		!sr_arena_append(dec, ":", 1, err) ||
		!sr_arena_append(dec, num, numlen, err) ||
		!sr_arena_append(dec, "", 1, err))
		return SR_DECODE_ERROR;

	/* the arena may have moved: resolve offsets only now */
	job->event_id = sr_arena_str(dec, o.event_id);
	job->cache_key = sr_arena_str(dec, cache_key);
	job->primary_hash = sr_arena_str(dec, o.primary_hash);
	job->group_states = sr_arena_str(dec, o.group_states);
	job->occurrence_id = sr_arena_str(dec, o.occurrence_id);
	job->queue = sr_arena_str(dec, o.queue);
	return SR_DECODE_JOB;
}
