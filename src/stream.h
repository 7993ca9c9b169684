/*
 * stream.h - a stream's definition as a worker sees it, and the parsing and
 * validation of a stream's options jsonb.
 */
#ifndef SR_STREAM_H
#define SR_STREAM_H

#include "postgres.h"

#include "nodes/pg_list.h"
#include "utils/jsonb.h"

#define SR_MAX_FOLLOWED_GROUPS 16

typedef struct sr_kv
{
	char	   *name;
	char	   *value;
} sr_kv;

typedef struct sr_stream_def
{
	char	   *name;
	char	   *topic;
	char	   *commit_log_topic;	/* NULL: remote offsets come from SQL */
	int			ngroups;
	char	   *groups[SR_MAX_FOLLOWED_GROUPS];
	char	   *consumer_group;
	char	   *initial_offset_reset;
	int			workers;
	/* options */
	char	   *bootstrap_servers;	/* NULL: sentry_relay.bootstrap_servers */
	char	   *eventstream_type;
	char	   *default_queue;	/* for jobs whose message names no queue */
	bool		keep_body;
	bool		local_assignment;	/* "assignment": "local": no consumer group join */
	bool		static_member;	/* "assignment": "static": group.instance.id */
	List	   *kafka_props;	/* of sr_kv */
} sr_stream_def;

/* Parse (and check) options into def; ereport(ERROR) on a bad option. */
extern void sr_parse_options(Jsonb *options, sr_stream_def *def);

/* The default queue of an eventstream type ("error", "transaction", ...). */
extern const char *sr_default_queue_for(const char *eventstream_type);

/* Parse "name=value;name=value" (sentry_relay.kafka_properties). */
extern List *sr_parse_property_list(const char *s, const char *what);

/* Check one librdkafka property against librdkafka and our reserved list. */
extern void sr_check_kafka_property(const char *name, const char *value,
									const char *what);

/* True for property names whose values must never be shown. */
extern bool sr_property_is_secret(const char *name);

#endif							/* SR_STREAM_H */
