/*
 * guc.c - defines sentry_relay's server settings, all namespaced
 * sentry_relay.*, and reserves the prefix.  Called from _PG_init.
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "compat.h"
#include "decode.h"
#include "guc.h"

int			sr_max_message_size = SR_DEFAULT_MAX_MESSAGE_BYTES;
char	   *sr_database = NULL;
char	   *sr_bootstrap_servers = NULL;
char	   *sr_kafka_properties = NULL;
int			sr_batch_size = 5000;
int			sr_batch_max_bytes = 16 * 1024 * 1024;
int			sr_batch_timeout = 10;
int			sr_max_workers = 8;
int			sr_queue_buffer_kb = 8192;
int			sr_max_attempts = 5;

void
sr_guc_init(void)
{
	DefineCustomIntVariable("sentry_relay.max_message_size",
							"Largest event message body that is decoded.",
							"Larger bodies are rejected with SQLSTATE 54000 "
							"(and dead-lettered by the relay).  Messages "
							"decoded from complete headers are not limited.",
							&sr_max_message_size,
							SR_DEFAULT_MAX_MESSAGE_BYTES,
							1024, INT_MAX / 2,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomStringVariable("sentry_relay.database",
							   "Database in which the relay's workers run.",
							   "The sentry_relay extension must be created in this database.",
							   &sr_database,
							   "postgres",
							   PGC_POSTMASTER, 0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("sentry_relay.bootstrap_servers",
							   "Default Kafka bootstrap servers of the relay's streams.",
							   "A stream's options.bootstrap_servers overrides it.",
							   &sr_bootstrap_servers,
							   "localhost:9092",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("sentry_relay.kafka_properties",
							   "Extra librdkafka properties for every stream, as name=value pairs separated by semicolons.",
							   "May hold SASL/SSL secrets, so only superusers can read it.",
							   &sr_kafka_properties,
							   "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("sentry_relay.batch_size",
							"Most messages a worker commits in one transaction.",
							NULL,
							&sr_batch_size,
							5000, 1, 1000000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("sentry_relay.batch_max_bytes",
							"Most message bytes a worker commits in one transaction.",
							NULL,
							&sr_batch_max_bytes,
							16 * 1024 * 1024, 1024, INT_MAX / 2,
							PGC_SIGHUP, GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomIntVariable("sentry_relay.batch_timeout",
							"Longest time a worker spends filling one batch before it commits.",
							"Under light load a batch is committed as soon as Kafka has nothing more to give.",
							&sr_batch_timeout,
							10, 1, 60000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("sentry_relay.max_workers",
							"Most relay workers that can run at once, over all streams.",
							"Each also takes a slot of max_worker_processes.",
							&sr_max_workers,
							8, 1, 256,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("sentry_relay.queue_buffer",
							"Most data librdkafka prefetches per worker (queued.max.messages.kbytes).",
							"Bounds a worker's memory whatever the backlog.",
							&sr_queue_buffer_kb,
							8192, 1024, 2097151,
							PGC_SIGHUP, GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("sentry_relay.max_attempts",
							"Attempts after which a failing job moves to sentry_relay.dead_jobs.",
							NULL,
							&sr_max_attempts,
							5, 1, 1000,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("sentry_relay");
}
