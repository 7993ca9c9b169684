/*
 * decode_commit.c - decode a writer's commit-log message.
 *
 * Key: "topic:partition:group", split at the first two colons so that a
 * group name may itself contain colons.  Value: either the current JSON form
 * {"offset": N, "orig_message_ts": secs, "received_p99": secs|null} or the
 * legacy ASCII integer, with an optional orig_message_ts header holding
 * "YYYY-MM-DDTHH:MM:SS.ffffffZ".  The offset is exclusive: the next offset the
 * writer will consume.
 */
#include <string.h>

#include "decode_internal.h"

/* Commit-log values are tiny; anything larger than this is not one. */
#define SR_MAX_COMMIT_VALUE_BYTES 65536
#define SR_MAX_COMMIT_KEY_BYTES 4096

static bool
sr_commit_key(sr_decoder *dec, const char *key, size_t len, sr_commit *c,
			  sr_aoff *topic, sr_aoff *group, sr_error *err)
{
	const char *c1,
			   *c2;
	int64_t		partition;
	char		ex[64];

	if (key == NULL)
	{
		sr_set_error(err, SR_ERR_MISSING_FIELD,
					 "commit log message has no key");
		return false;
	}
	if (len > SR_MAX_COMMIT_KEY_BYTES)
	{
		sr_set_error(err, SR_ERR_MESSAGE_TOO_LARGE,
					 "commit log key of %zu bytes exceeds the limit of %d bytes",
					 len, SR_MAX_COMMIT_KEY_BYTES);
		return false;
	}
	if (!sr_check_text("commit log key", key, len, err))
		return false;
	c1 = memchr(key, ':', len);
	c2 = c1 ? memchr(c1 + 1, ':', len - (size_t) (c1 + 1 - key)) : NULL;
	if (c2 == NULL || c1 == key || c2 == key + len - 1)
	{
		sr_excerpt(ex, sizeof(ex), key, len);
		sr_set_error(err, SR_ERR_INVALID_VALUE,
					 "commit log key must look like \"topic:partition:group\", not \"%s\"",
					 ex);
		return false;
	}
	if (!sr_parse_decimal(c1 + 1, (size_t) (c2 - c1 - 1),
						  "commit log key partition", &partition, err))
		return false;
	if (partition > INT32_MAX)
	{
		sr_set_error(err, SR_ERR_OUT_OF_RANGE,
					 "commit log key partition %lld is out of range",
					 (long long) partition);
		return false;
	}
	c->partition = (int32_t) partition;
	return sr_arena_push(dec, key, (size_t) (c1 - key), topic, err) &&
		sr_arena_push(dec, c2 + 1, len - (size_t) (c2 + 1 - key), group, err);
}

static bool
sr_commit_json_value(sr_decoder *dec, const char *value, size_t len,
					 sr_commit *c, sr_error *err)
{
	struct json_object *root,
			   *v;
	bool		ok = false;

	root = sr_parse_json(dec, "commit log value", value, len, err);
	if (root == NULL)
		return false;
	if (!json_object_is_type(root, json_type_object))
	{
		sr_set_error(err, SR_ERR_WRONG_TYPE,
					 "commit log value must be a JSON object or an integer, not %s",
					 json_type_to_name(json_object_get_type(root)));
		goto done;
	}
	if (!json_object_object_get_ex(root, "offset", &v))
	{
		sr_set_error(err, SR_ERR_MISSING_FIELD,
					 "commit log value has no field \"offset\"");
		goto done;
	}
	if (!sr_json_int64(v, "offset", &c->offset, err))
		goto done;
	if (json_object_object_get_ex(root, "orig_message_ts", &v) && v != NULL)
	{
		if (!sr_json_timestamp(v, "orig_message_ts", &c->orig_message_ts_us, err))
			goto done;
		c->has_orig_message_ts = true;
	}
	if (json_object_object_get_ex(root, "received_p99", &v) && v != NULL)
	{
		if (!sr_json_timestamp(v, "received_p99", &c->received_p99_us, err))
			goto done;
		c->has_received_p99 = true;
	}
	ok = true;
done:
	json_object_put(root);
	return ok;
}

sr_decode_status
sr_decode_commit_log(sr_decoder *dec, const void *key, size_t key_len,
					 const void *value, size_t value_len,
					 const sr_header *headers, size_t nheaders,
					 sr_commit *c, sr_error *err)
{
	sr_aoff		topic = SR_ANULL,
				group = SR_ANULL;
	const char *v = value;
	size_t		i;

	err->cls = SR_OK;
	err->message[0] = '\0';
	sr_arena_reset(dec);
	memset(c, 0, sizeof(*c));

	if (!sr_commit_key(dec, key, key_len, c, &topic, &group, err))
		return SR_DECODE_ERROR;
	if (value == NULL)
	{
		sr_set_error(err, SR_ERR_MISSING_FIELD,
					 "commit log message has no value");
		return SR_DECODE_ERROR;
	}
	if (value_len > SR_MAX_COMMIT_VALUE_BYTES)
	{
		sr_set_error(err, SR_ERR_MESSAGE_TOO_LARGE,
					 "commit log value of %zu bytes exceeds the limit of %d bytes",
					 value_len, SR_MAX_COMMIT_VALUE_BYTES);
		return SR_DECODE_ERROR;
	}
	if (!sr_check_text("commit log value", value, value_len, err))
		return SR_DECODE_ERROR;

	for (i = 0; i < value_len && (v[i] == ' ' || v[i] == '\t' ||
								  v[i] == '\n' || v[i] == '\r'); i++)
		;
	if (i < value_len && (v[i] == '{' || v[i] == '['))
	{
		if (!sr_commit_json_value(dec, v, value_len, c, err))
			return SR_DECODE_ERROR;
	}
	else
	{
		const sr_header *h;

		size_t		end = value_len;

		/* legacy: the value is the offset in ASCII (Python's int() trims) */
		while (end > i && (v[end - 1] == ' ' || v[end - 1] == '\t' ||
						   v[end - 1] == '\n' || v[end - 1] == '\r'))
			end--;
		if (!sr_parse_decimal(v + i, end - i, "commit log offset", &c->offset, err))
			return SR_DECODE_ERROR;
		h = sr_find_header(headers, nheaders, "orig_message_ts");
		if (h != NULL && h->value != NULL)
		{
			if (!sr_parse_iso8601(h->value, h->value_len,
								  "orig_message_ts header",
								  &c->orig_message_ts_us, err))
				return SR_DECODE_ERROR;
			c->has_orig_message_ts = true;
		}
	}
	c->topic = sr_arena_str(dec, topic);
	c->group = sr_arena_str(dec, group);
	return SR_DECODE_JOB;
}
