/*
 * message.c - a Kafka message as the relay sees it: its raw parts as
 * decoder input (sr_msg, headers converted from librdkafka's), and the
 * outcome of decoding an event (sr_outcome): a job's row, a skip, or the
 * error that sends it to the dead letters.
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "decode_sql.h"
#include "worker.h"

#define SR_ROW_KEEP_BYTES (4 * 1024 * 1024)	/* the row buffer kept between rows */

/* Headers of a message as decoder input (current context). */
static sr_header *
sr_message_headers(const rd_kafka_message_t *m, size_t *n)
{
	rd_kafka_headers_t *hdrs = NULL;
	sr_header  *hs;
	size_t		cnt;

	*n = 0;
	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || hdrs == NULL)
		return NULL;
	cnt = rd_kafka_header_cnt(hdrs);
	hs = palloc(sizeof(sr_header) * Max(cnt, 1));
	for (size_t i = 0; i < cnt; i++)
	{
		const char *name;
		const void *val;
		size_t		size;

		if (rd_kafka_header_get_all(hdrs, i, &name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
			break;
		hs[i].name = name;
		hs[i].name_len = strlen(name);
		hs[i].value = val;
		hs[i].value_len = val ? size : 0;
		(*n)++;
	}
	return hs;
}

/*
 * Describe a Kafka message as a sr_msg; its parts stay librdkafka's, the
 * header array goes to the current context.
 */
void
sr_msg_from_kafka(const rd_kafka_message_t *m, sr_msg *msg)
{
	rd_kafka_timestamp_type_t tstype;

	msg->partition = m->partition;
	msg->offset = m->offset;
	msg->payload = m->payload;
	msg->len = m->payload != NULL ? m->len : 0;
	msg->key = m->key;
	msg->key_len = m->key != NULL ? m->key_len : 0;
	msg->headers = sr_message_headers(m, &msg->nheaders);
	msg->ts_ms = rd_kafka_message_timestamp(m, &tstype);
	msg->has_ts = tstype != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && msg->ts_ms >= 0;
}

/*
 * Decode a message of the events topic.  A job's row goes to the worker's
 * row buffer, valid until the next call; the raw parts of an error stay the
 * message's.  The caller hands the outcome to the batch or the hold, which
 * copy what they keep.
 */
void
sr_decode_outcome(sr_worker *w, const sr_msg *m, sr_outcome *out)
{
	sr_job		job;

	memset(out, 0, sizeof(*out));
	out->offset = m->offset;
	out->msg_bytes = m->len + m->key_len;
	out->st = sr_decode_event(sr_get_decoder(), m->payload, m->len, m->headers, m->nheaders,
							  &job, &out->err);
	if (out->st == SR_DECODE_JOB)
	{
		if (w->row.data != NULL && w->row.maxlen > SR_ROW_KEEP_BYTES)
		{
			pfree(w->row.data); /* a huge row: give its memory back */
			w->row.data = NULL;
		}
		if (w->row.data == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			initStringInfo(&w->row);
			MemoryContextSwitchTo(old);
		}
		resetStringInfo(&w->row);
		sr_rows_encode(&w->row, &w->def, m->partition, m->offset, &job, m->has_ts,
					   sr_unix_us_to_timestamptz(m->ts_ms * 1000), m->payload, m->len);
		out->row = w->row.data;
		out->row_len = w->row.len;
	}
	else if (out->st == SR_DECODE_ERROR)
		out->msg = *m;
}
