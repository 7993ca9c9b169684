/*
 * decode_event.c - decode an events-topic message into a post-process job.
 *
 * The value is a JSON array [version, operation, ...].  Version 1 and 2
 * inserts become jobs; replacement operations and skip_consume inserts are
 * skipped.  Current producers repeat the task fields in Kafka headers: when
 * those are present and complete the body is never read, and when they are
 * incomplete or invalid the body is decoded instead, as Sentry does.
 *
 * A body is first skimmed (json_skim.c) and, in the plain cases, decoded
 * straight from its text (decode_fast.c); otherwise json-c parses it, and
 * its result and errors are the reference.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode_internal.h"
#include "json_skim.h"

static const char *const sr_v1_skip_ops[] = {
	"delete", "delete_groups", "merge", "unmerge", NULL
};

static const char *const sr_v2_skip_ops[] = {
	"start_delete_groups", "end_delete_groups",
	"start_merge", "end_merge",
	"start_unmerge", "end_unmerge",
	"start_unmerge_hierarchical", "end_unmerge_hierarchical",
	"start_delete_tag", "end_delete_tag",
	"tombstone_events", "replace_group", "exclude_groups",
	NULL
};

/* The static name of a known operation of this version, or NULL. */
const char *
sr_event_lookup_op(int version, const char *op, size_t len)
{
	const char *const *list = version == 1 ? sr_v1_skip_ops : sr_v2_skip_ops;

	if (len == 6 && memcmp(op, "insert", 6) == 0)
		return "insert";
	for (; *list != NULL; list++)
		if (strlen(*list) == len && memcmp(*list, op, len) == 0)
			return *list;
	return NULL;
}

/* Store a 32-hex-digit event id, lower-cased, into job->event_id. */
bool
sr_event_set_event_id(sr_job *job, const char *s, size_t len, sr_error *err)
{
	char		ex[64];

	if (len == 32)
	{
		size_t		i;

		for (i = 0; i < 32; i++)
		{
			char		c = s[i];

			if (c >= 'A' && c <= 'F')
				c = (char) (c - 'A' + 'a');
			else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
				break;
			job->event_id[i] = c;
		}
		if (i == 32)
		{
			job->event_id[32] = '\0';
			return true;
		}
	}
	sr_excerpt(ex, sizeof(ex), s, len);
	sr_set_error(err, SR_ERR_INVALID_VALUE,
				 "field \"event_id\" must be 32 hexadecimal digits, not \"%s\"", ex);
	return false;
}

/* Write v (>= 0) in decimal at p; returns the number of digits. */
static size_t
sr_event_format_uint(char *p, int64_t v)
{
	char		tmp[24];
	size_t		n = 0;

	do
	{
		tmp[n++] = (char) ('0' + v % 10);
		v /= 10;
	} while (v > 0);
	for (size_t i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

/*
 * Append group state i of an array to the arena in canonical form,
 * {"id":N,"is_new":B,"is_regression":B,"is_new_group_environment":B},
 * preceded by a comma unless it is the first.  Both decoding paths use it.
 */
bool
sr_event_append_group_state(sr_decoder *dec, size_t i, int64_t id,
							const bool flags[3], sr_error *err)
{
	static const char *const names[] = {
		",\"is_new\":", ",\"is_regression\":", ",\"is_new_group_environment\":"
	};
	char		buf[160];
	size_t		n = 0;

	if (i > 0)
		buf[n++] = ',';
	memcpy(buf + n, "{\"id\":", 6);
	n += 6;
	n += sr_event_format_uint(buf + n, id);
	for (int f = 0; f < 3; f++)
	{
		size_t		l = strlen(names[f]);

		memcpy(buf + n, names[f], l);
		n += l;
		memcpy(buf + n, flags[f] ? "true" : "false", flags[f] ? 4 : 5);
		n += flags[f] ? 4 : 5;
	}
	buf[n++] = '}';
	return sr_arena_append(dec, buf, n, err);
}

/*
 * Validate a group_states array and append its canonical JSON text to the
 * arena: [{"id":N,"is_new":B,"is_regression":B,"is_new_group_environment":B}].
 */
static bool
sr_event_group_states(sr_decoder *dec, struct json_object *arr, sr_aoff *off,
					  sr_error *err)
{
	static const char *const flags[] = {
		"is_new", "is_regression", "is_new_group_environment"
	};
	static const char *const flag_fields[] = {
		"group_states.is_new", "group_states.is_regression",
		"group_states.is_new_group_environment"
	};
	size_t		start = dec->arena_len;
	size_t		n;

	if (!json_object_is_type(arr, json_type_array))
	{
		sr_set_error(err, SR_ERR_WRONG_TYPE,
					 "field \"group_states\" must be an array or null, not %s",
					 json_type_to_name(json_object_get_type(arr)));
		return false;
	}
	if (!sr_arena_append(dec, "[", 1, err))
		return false;
	n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++)
	{
		struct json_object *gs = json_object_array_get_idx(arr, i);
		struct json_object *v;
		int64_t		id;
		bool		b[3];

		if (gs == NULL || !json_object_is_type(gs, json_type_object))
		{
			sr_set_error(err, SR_ERR_WRONG_TYPE,
						 "group_states[%zu] must be an object, not %s", i,
						 gs == NULL ? "null" : json_type_to_name(json_object_get_type(gs)));
			return false;
		}
		if (!json_object_object_get_ex(gs, "id", &v))
		{
			sr_set_error(err, SR_ERR_MISSING_FIELD,
						 "group_states[%zu] has no \"id\"", i);
			return false;
		}
		if (!sr_json_int64(v, "group_states.id", &id, err))
			return false;
		for (int f = 0; f < 3; f++)
		{
			if (!json_object_object_get_ex(gs, flags[f], &v))
			{
				sr_set_error(err, SR_ERR_MISSING_FIELD,
							 "group_states[%zu] has no \"%s\"", i, flags[f]);
				return false;
			}
			if (!sr_json_bool(v, flag_fields[f], &b[f], err))
				return false;
		}
		if (!sr_event_append_group_state(dec, i, id, b, err))
			return false;
	}
	if (!sr_arena_append(dec, "]", 1, err) || !sr_arena_append(dec, "", 1, err))
		return false;
	*off = start;
	return true;
}

/* An optional string member: absent or null leaves *off as SR_ANULL. */
static bool
sr_event_opt_string(sr_decoder *dec, struct json_object *obj, const char *field,
					sr_aoff *off, sr_error *err)
{
	struct json_object *v;
	const char *s;
	size_t		len;

	*off = SR_ANULL;
	if (!json_object_object_get_ex(obj, field, &v) || v == NULL)
		return true;
	if (!sr_json_string(v, field, &s, &len, err))
		return false;
	return sr_arena_push(dec, s, len, off, err);
}

/* An optional boolean member: absent or null gives dflt. */
static bool
sr_event_opt_bool(struct json_object *obj, const char *field, bool dflt,
				  bool *out, sr_error *err)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, field, &v) || v == NULL)
	{
		*out = dflt;
		return true;
	}
	return sr_json_bool(v, field, out, err);
}

/* A required member, present (it may still be JSON null). */
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

/* The insert payload: [version, "insert", event_data, task_state, ...]. */
static sr_decode_status
sr_event_insert_from_json(sr_decoder *dec, struct json_object *root,
						  sr_job *job, sr_job_offsets *o, sr_error *err)
{
	size_t		n = json_object_array_length(root);
	struct json_object *ed,
			   *ts,
			   *v;
	const char *s;
	size_t		len;
	bool		ignored;

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
	ed = json_object_array_get_idx(root, 2);
	ts = json_object_array_get_idx(root, 3);
	if (ed == NULL || !json_object_is_type(ed, json_type_object))
	{
		sr_set_error(err, SR_ERR_WRONG_TYPE,
					 "insert event data must be a JSON object, not %s",
					 ed == NULL ? "null" : json_type_to_name(json_object_get_type(ed)));
		return SR_DECODE_ERROR;
	}
	if (ts == NULL || !json_object_is_type(ts, json_type_object))
	{
		sr_set_error(err, SR_ERR_WRONG_TYPE,
					 "insert task state must be a JSON object, not %s",
					 ts == NULL ? "null" : json_type_to_name(json_object_get_type(ts)));
		return SR_DECODE_ERROR;
	}

	/* as in Sentry, skip_consume short-circuits everything else */
	if (!sr_event_opt_bool(ts, "skip_consume", false, &job->skip_consume, err))
		return SR_DECODE_ERROR;
	if (job->skip_consume)
		return SR_DECODE_SKIP;

	if (!sr_event_required(ed, "event data", "event_id", &v, err) ||
		!sr_json_string(v, "event_id", &s, &len, err) ||
		!sr_event_set_event_id(job, s, len, err))
		return SR_DECODE_ERROR;
	if (!sr_event_required(ed, "event data", "project_id", &v, err) ||
		!sr_json_int64(v, "project_id", &job->project_id, err))
		return SR_DECODE_ERROR;
	if (json_object_object_get_ex(ed, "group_id", &v) && v != NULL)
	{
		if (!sr_json_int64(v, "group_id", &job->group_id, err))
			return SR_DECODE_ERROR;
		job->has_group_id = true;
	}
	if (!sr_event_opt_string(dec, ed, "primary_hash", &o->primary_hash, err) ||
		!sr_event_opt_string(dec, ed, "occurrence_id", &o->occurrence_id, err))
		return SR_DECODE_ERROR;

	if (!sr_event_required(ts, "task state", "is_new", &v, err) ||
		!sr_json_bool(v, "is_new", &job->is_new, err))
		return SR_DECODE_ERROR;
	if (!sr_event_required(ts, "task state", "is_regression", &v, err) ||
		!sr_json_bool(v, "is_regression", &job->is_regression, err))
		return SR_DECODE_ERROR;
	/* newer keys: absent from version 1 and early version 2 producers */
	if (!sr_event_opt_bool(ts, "is_new_group_environment", false,
						   &job->is_new_group_environment, err) ||
		!sr_event_opt_bool(ts, "is_sample", false, &ignored, err))
		return SR_DECODE_ERROR;
	if (!sr_event_opt_string(dec, ts, "queue", &o->queue, err))
		return SR_DECODE_ERROR;
	if (json_object_object_get_ex(ts, "group_states", &v) && v != NULL &&
		!sr_event_group_states(dec, v, &o->group_states, err))
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

static sr_decode_status
sr_event_from_body(sr_decoder *dec, const char *value, size_t len,
				   sr_job *job, sr_job_offsets *o, sr_error *err)
{
	struct json_object *root,
			   *v;
	sr_decode_status st;
	bool		skimmed;
	int64_t		version;
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
	if (json_object_array_length(root) < 2)
	{
		sr_set_error(err, SR_ERR_MISSING_FIELD,
					 "event message must hold at least a version and an operation");
		goto done;
	}

	/* the version: an integer, or a decimal string as Python's int() takes */
	v = json_object_array_get_idx(root, 0);
	if (v != NULL && json_object_is_type(v, json_type_string))
	{
		const char *s = json_object_get_string(v);
		size_t		slen = (size_t) json_object_get_string_len(v);

		if (!sr_parse_decimal(s, slen, "event message version", &version, err))
		{
			sr_excerpt(ex, sizeof(ex), s, slen);
			sr_set_error(err, SR_ERR_UNSUPPORTED_VERSION,
						 "unsupported event message version \"%s\"", ex);
			goto done;
		}
	}
	else if (v != NULL && json_object_is_type(v, json_type_int))
		version = json_object_get_int64(v);	/* clamped; only 1 and 2 pass */
	else
	{
		sr_set_error(err, SR_ERR_WRONG_TYPE,
					 "event message version must be an integer, not %s",
					 v == NULL ? "null" : json_type_to_name(json_object_get_type(v)));
		goto done;
	}
	if (version != 1 && version != 2)
	{
		sr_set_error(err, SR_ERR_UNSUPPORTED_VERSION,
					 "unsupported event message version %lld", (long long) version);
		goto done;
	}
	job->version = (int) version;

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
		st = sr_event_insert_from_json(dec, root, job, o, err);

done:
	json_object_put(root);
	return st;
}

/* A "0"/"1" header. */
static bool
sr_header_bool(const sr_header *h, bool *out)
{
	if (h == NULL || h->value == NULL || h->value_len != 1)
		return false;
	if (((const char *) h->value)[0] == '0')
		*out = false;
	else if (((const char *) h->value)[0] == '1')
		*out = true;
	else
		return false;
	return true;
}

/* A decimal integer header. */
static bool
sr_header_int(const sr_header *h, int64_t *out)
{
	sr_error	ignored;

	return h != NULL && h->value != NULL &&
		sr_parse_decimal(h->value, h->value_len, "header", out, &ignored);
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
 * Decode from the task headers alone.  Returns SR_DECODE_JOB or
 * SR_DECODE_SKIP when the headers are complete and valid, and
 * SR_DECODE_ERROR when the body must be decoded instead (err untouched).
 */
static sr_decode_status
sr_event_from_headers(sr_decoder *dec, const sr_header *hs, size_t n,
					  sr_job *job, sr_job_offsets *o)
{
	const sr_header *h;
	int64_t		version;
	bool		skip;
	sr_error	ignored;

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
	if (strcmp(job->operation, "insert") != 0)
		return SR_DECODE_SKIP;

	h = sr_find_header(hs, n, "event_id");
	if (h == NULL || h->value == NULL ||
		!sr_event_set_event_id(job, h->value, h->value_len, &ignored))
		return SR_DECODE_ERROR;
	if (!sr_header_int(sr_find_header(hs, n, "project_id"), &job->project_id))
		return SR_DECODE_ERROR;
	h = sr_find_header(hs, n, "group_id");
	if (h != NULL && h->value != NULL)
	{
		if (!sr_header_int(h, &job->group_id))
			return SR_DECODE_ERROR;
		job->has_group_id = true;
	}
	if (!sr_header_opt_text(dec, sr_find_header(hs, n, "primary_hash"),
							&o->primary_hash) ||
		!sr_header_opt_text(dec, sr_find_header(hs, n, "occurrence_id"),
							&o->occurrence_id))
		return SR_DECODE_ERROR;
	if (!sr_header_bool(sr_find_header(hs, n, "skip_consume"), &skip) ||
		!sr_header_bool(sr_find_header(hs, n, "is_new"), &job->is_new) ||
		!sr_header_bool(sr_find_header(hs, n, "is_regression"),
						&job->is_regression) ||
		!sr_header_bool(sr_find_header(hs, n, "is_new_group_environment"),
						&job->is_new_group_environment))
		return SR_DECODE_ERROR;

	/* queue: optional, but a header present with a null value is invalid */
	h = sr_find_header(hs, n, "queue");
	if (h != NULL && h->value == NULL)
		return SR_DECODE_ERROR;
	if (!sr_header_opt_text(dec, h, &o->queue))
		return SR_DECODE_ERROR;

	h = sr_find_header(hs, n, "group_states");
	if (h != NULL && h->value != NULL &&
		!(h->value_len == 4 && memcmp(h->value, "null", 4) == 0))
	{
		struct json_object *gs;
		bool		ok;
		int			ndrop;
		size_t		mark = dec->arena_len;

		if (h->value_len > dec->max_message_bytes)
			return SR_DECODE_ERROR;

		/*
		 * Plain JSON is read directly (the skim checks its UTF-8 too);
		 * anything else is checked as text and goes to json-c.
		 */
		if (dec->skim_min == 0 ||
			!sr_json_skim(h->value, h->value_len, NULL, 0, NULL, 0, &ndrop, NULL) ||
			!sr_fast_group_states(dec, h->value, h->value_len, &o->group_states))
		{
			dec->arena_len = mark;
			if (!sr_check_text("header", h->value, h->value_len, &ignored))
				return SR_DECODE_ERROR;
			gs = sr_parse_json(dec, "group_states header", h->value,
							   h->value_len, &ignored);
			if (gs == NULL)
				return SR_DECODE_ERROR;
			ok = sr_event_group_states(dec, gs, &o->group_states, &ignored);
			json_object_put(gs);
			if (!ok)
				return SR_DECODE_ERROR;
		}
	}
	job->source = SR_SOURCE_HEADERS;
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
	o->primary_hash = o->group_states = o->occurrence_id = o->queue = SR_ANULL;
}

sr_decode_status
sr_decode_event(sr_decoder *dec, const void *value, size_t value_len,
				const sr_header *headers, size_t nheaders, sr_job *job,
				sr_error *err)
{
	sr_job_offsets o;
	sr_decode_status st = SR_DECODE_ERROR;

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

	job->primary_hash = sr_arena_str(dec, o.primary_hash);
	job->group_states = sr_arena_str(dec, o.group_states);
	job->occurrence_id = sr_arena_str(dec, o.occurrence_id);
	job->queue = o.queue != SR_ANULL ? sr_arena_str(dec, o.queue) : SR_DEFAULT_QUEUE;
	/* e:{event_id}:{project_id}; project_id is never negative */
	memcpy(job->cache_key, "e:", 2);
	memcpy(job->cache_key + 2, job->event_id, 32);
	job->cache_key[34] = ':';
	job->cache_key[35 + sr_event_format_uint(job->cache_key + 35, job->project_id)] = '\0';
	return SR_DECODE_JOB;
}
