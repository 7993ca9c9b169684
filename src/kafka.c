/*
 * kafka.c - librdkafka configuration and consumer handles for the relay
 * worker (see kafka.h).  Nothing here runs on a librdkafka thread: logs,
 * errors and rebalances arrive as events on the consumer queue and are
 * served by the worker loop.
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "utils/memutils.h"

#include "guc.h"
#include "kafka.h"

/*
 * Values of the secret properties this process has configured (see
 * sr_property_is_secret), in TopMemoryContext: masked in every librdkafka
 * log line and error we pass on.  librdkafka redacts the properties it
 * knows to be sensitive in its configuration dump (debug=conf), but not,
 * for example, sasl.kerberos.keytab, and a secret may surface elsewhere.
 */
static List *sr_secret_values = NIL;

#define SR_REDACTED "[redacted]"
#define SR_MIN_MASKED_LEN 4		/* shorter values would mask ordinary words */

static void
sr_remember_secret(const char *name, const char *value)
{
	ListCell   *lc;
	MemoryContext old;

	if (!sr_property_is_secret(name) || value == NULL || strlen(value) < SR_MIN_MASKED_LEN)
		return;
	foreach(lc, sr_secret_values)
		if (strcmp(lfirst(lc), value) == 0)
			return;
	old = MemoryContextSwitchTo(TopMemoryContext);
	sr_secret_values = lappend(sr_secret_values, pstrdup(value));
	MemoryContextSwitchTo(old);
}

/*
 * A copy of a librdkafka message with secrets masked: the value of a
 * "name = value" line of the configuration dump whose name is secret, and
 * every occurrence of a configured secret value.
 */
static char *
sr_kafka_redact(const char *str)
{
	StringInfoData buf;
	const char *p = str;
	const char *eq;
	ListCell   *lc;
	char	   *out;

	/* the configuration dump: "  name = value" */
	while (*p == ' ')
		p++;
	eq = strstr(p, " = ");
	if (eq != NULL && eq > p && strcspn(p, " ") == (size_t) (eq - p))
	{
		char	   *name = pnstrdup(p, eq - p);

		if (sr_property_is_secret(name))
		{
			pfree(name);
			return psprintf("%.*s = " SR_REDACTED, (int) (eq - str), str);
		}
		pfree(name);
	}

	out = pstrdup(str);
	foreach(lc, sr_secret_values)
	{
		const char *secret = lfirst(lc);
		size_t		slen = strlen(secret);
		const char *hit;
		const char *from = out;

		if (strstr(out, secret) == NULL)
			continue;
		initStringInfo(&buf);
		while ((hit = strstr(from, secret)) != NULL)
		{
			appendBinaryStringInfo(&buf, from, hit - from);
			appendStringInfoString(&buf, SR_REDACTED);
			from = hit + slen;
		}
		appendStringInfoString(&buf, from);
		pfree(out);
		out = buf.data;
	}
	return out;
}

static void
sr_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char		errstr[512];

	sr_remember_secret(name, value);
	if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
	{
		rd_kafka_conf_destroy(conf);
		if (sr_property_is_secret(name))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for librdkafka property \"%s\"", name),
					 errhint("The value is not shown because the property holds a secret.")));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid librdkafka configuration: %s", sr_kafka_redact(errstr)),
				 errhint("Check sentry_relay.kafka_properties and the stream's options.")));
	}
}

void
sr_consumer_create(sr_consumer *c, const sr_stream_def *def,
				   const char *client_id, bool group_consumer,
				   const char *instance_id, int wake_fd)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char		errstr[512];
	char		buf[64];
	ListCell   *lc;
	List	   *props;
	rd_kafka_resp_err_t err;

	sr_conf_set(conf, "bootstrap.servers",
				def->bootstrap_servers ? def->bootstrap_servers : sr_bootstrap_servers);
	sr_conf_set(conf, "client.id", client_id);
	if (group_consumer)
	{
		sr_conf_set(conf, "group.id", def->consumer_group);
		/* a restarted member takes its place back without waiting for the session timeout */
		if (instance_id != NULL)
			sr_conf_set(conf, "group.instance.id", instance_id);
	}
	else
	{
		/* assign()-only: never joins or commits, but librdkafka wants a name */
		snprintf(buf, sizeof(buf), "sentry_relay-%s-commit-log", def->name);
		sr_conf_set(conf, "group.id", buf);
	}
	sr_conf_set(conf, "enable.auto.commit", "false");
	sr_conf_set(conf, "enable.auto.offset.store", "false");
	/*
	 * The events consumer learns where the partition ends: past transaction
	 * markers and aborted or compacted offsets, which no message shows.
	 */
	sr_conf_set(conf, "enable.partition.eof", group_consumer ? "true" : "false");
	/* the commit log decides for itself where to resume (commit_log.c) */
	sr_conf_set(conf, "auto.offset.reset",
				group_consumer ? def->initial_offset_reset : "error");
	sr_conf_set(conf, "log.queue", "true");
	snprintf(buf, sizeof(buf), "%d", sr_queue_buffer_kb);
	sr_conf_set(conf, "queued.max.messages.kbytes", buf);
	sr_conf_set(conf, "queued.min.messages", "10000");
	/* wake quickly when the gate opens; the fetcher long-polls otherwise */
	sr_conf_set(conf, "fetch.wait.max.ms", "100");

	props = sr_parse_property_list(sr_kafka_properties, "sentry_relay.kafka_properties");
	foreach(lc, props)
		sr_conf_set(conf, ((sr_kv *) lfirst(lc))->name, ((sr_kv *) lfirst(lc))->value);
	foreach(lc, def->kafka_props)
		sr_conf_set(conf, ((sr_kv *) lfirst(lc))->name, ((sr_kv *) lfirst(lc))->value);

	/* everything is served as events from the main thread */
	rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_REBALANCE | RD_KAFKA_EVENT_ERROR |
							 RD_KAFKA_EVENT_LOG | RD_KAFKA_EVENT_OFFSET_COMMIT);

	c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (c->rk == NULL)
	{
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not create a Kafka consumer: %s", sr_kafka_redact(errstr))));
	}
	/* conf is owned by rk now */
	err = rd_kafka_poll_set_consumer(c->rk);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		elog(ERROR, "rd_kafka_poll_set_consumer failed: %s", rd_kafka_err2str(err));
	c->queue = rd_kafka_queue_get_consumer(c->rk);
	if (c->queue == NULL)
		elog(ERROR, "rd_kafka_queue_get_consumer returned no queue");
	err = rd_kafka_set_log_queue(c->rk, c->queue);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		elog(ERROR, "rd_kafka_set_log_queue failed: %s", rd_kafka_err2str(err));
	rd_kafka_queue_io_event_enable(c->queue, wake_fd, "1", 1);
}

void
sr_consumer_destroy(sr_consumer *c, bool close_group)
{
	if (c->rk == NULL)
		return;
	if (c->queue != NULL)
	{
		rd_kafka_queue_io_event_enable(c->queue, -1, NULL, 0);
		rd_kafka_queue_destroy(c->queue);
		c->queue = NULL;
	}
	rd_kafka_destroy_flags(c->rk, close_group ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	c->rk = NULL;
}

void
sr_kafka_log_event(rd_kafka_event_t *ev, const char *who)
{
	const char *fac = NULL;
	const char *str = NULL;
	int			level = 7;

	if (rd_kafka_event_log(ev, &fac, &str, &level) != 0 || str == NULL)
		return;
	/* syslog levels: 0-4 are emergencies to warnings */
	ereport(level <= 4 ? LOG : DEBUG1,
			(errmsg("sentry_relay %s: librdkafka %s: %s", who, fac ? fac : "",
					sr_kafka_redact(str))));
}

bool
sr_kafka_error_is_broker_down(rd_kafka_resp_err_t err)
{
	return err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
		err == RD_KAFKA_RESP_ERR__TRANSPORT ||
		err == RD_KAFKA_RESP_ERR__RESOLVE ||
		err == RD_KAFKA_RESP_ERR__TIMED_OUT;
}

rd_kafka_topic_partition_list_t *
sr_kafka_one(const char *topic, int32 partition, int64 offset)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);

	rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
	return l;
}

rd_kafka_resp_err_t
sr_kafka_topic_metadata(rd_kafka_t *rk, const char *topic, int timeout_ms,
						const struct rd_kafka_metadata **md)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	rd_kafka_resp_err_t err;

	*md = NULL;
	if (rkt == NULL)
		return rd_kafka_last_error();
	err = rd_kafka_metadata(rk, 0, rkt, md, timeout_ms);
	rd_kafka_topic_destroy(rkt);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		*md = NULL;
		return err;
	}
	if ((*md)->topic_cnt != 1)
		err = RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
	else if ((*md)->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
		err = (*md)->topics[0].err;
	else if ((*md)->topics[0].partition_cnt <= 0)
		err = RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		rd_kafka_metadata_destroy(*md);
		*md = NULL;
	}
	return err;
}

/* Drop a consumer's whole assignment (eager protocol), logging a failure. */
void
sr_kafka_unassign_all(rd_kafka_t *rk, const char *who)
{
	rd_kafka_resp_err_t err = rd_kafka_assign(rk, NULL);

	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		ereport(LOG, (errmsg("%s: could not drop the partition assignment: %s", who,
							 rd_kafka_err2str(err))));
}
