/*
 * guc.c - defines sentry_relay's server settings, all namespaced
 * sentry_relay.*, and reserves the prefix.  Called from _PG_init.  Also the
 * checks of the worker role (sentry_relay.worker_role) and the workers'
 * connection as that role.
 */
#include "postgres.h"

#include <limits.h>

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "postmaster/bgworker.h"
#include "utils/guc.h"
#include "utils/syscache.h"

#include "compat.h"
#include "decode.h"
#include "guc.h"

int			sr_max_message_size = SR_DEFAULT_MAX_MESSAGE_BYTES;
char	   *sr_database = NULL;
char	   *sr_worker_role = NULL;
char	   *sr_bootstrap_servers = NULL;
char	   *sr_kafka_properties = NULL;
int			sr_batch_size = 5000;
int			sr_batch_max_bytes = 16 * 1024 * 1024;
int			sr_batch_timeout = 10;
bool		sr_fetch_wakeup = true;
bool		sr_synchronous_commit = false;
int			sr_max_workers = 8;
int			sr_queue_buffer_kb = 8192;
int			sr_max_attempts = 5;

/*
 * Define the settings.  The PGC_POSTMASTER ones exist only when the library
 * is preloaded: PostgreSQL cannot create them later (it would end the
 * session), and without the preload there is no relay for them to set.
 */
void
sr_guc_init(bool preloaded)
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

	if (preloaded)
		DefineCustomStringVariable("sentry_relay.database",
								   "Database in which the relay's workers run.",
								   "The sentry_relay extension must be created in this database.",
								   &sr_database,
								   "postgres",
								   PGC_POSTMASTER, 0,
								   NULL, NULL, NULL);

	if (preloaded)
		DefineCustomStringVariable("sentry_relay.worker_role",
								   "Role the relay's workers run as.",
								   "CREATE EXTENSION creates sentry_relay_relay with exactly the "
								   "grants the workers need.  It must not be a superuser.  "
								   "Empty runs the workers as the bootstrap superuser.",
								   &sr_worker_role,
								   "sentry_relay_relay",
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

	DefineCustomBoolVariable("sentry_relay.synchronous_commit",
							 "Whether a relay worker's batch commit waits for its WAL to be flushed.",
							 "Off: batches commit asynchronously, and a worker mirrors offsets to Kafka only once their commit is flushed, so a crash loses no message (its jobs and offsets go together, and it is read again). On: each batch waits for the flush, and for synchronous standbys, as the server's synchronous_commit says.",
							 &sr_synchronous_commit,
							 false,
							 PGC_SIGHUP, 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("sentry_relay.fetch_wakeup",
							 "Whether a relay worker wakes librdkafka's fetcher when a partition is behind and its queue runs low.",
							 "A developer setting, kept while the wake-up is measured on real brokers: off skips the ListOffsets request that the fetch waker thread makes.",
							 &sr_fetch_wakeup,
							 true,
							 PGC_SIGHUP, GUC_NOT_IN_SAMPLE,
							 NULL, NULL, NULL);

	if (preloaded)
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

/*
 * The worker role (sentry_relay.worker_role).
 *
 * A background worker of PostgreSQL 15 connects only as a role that can log
 * in, and a missing role is a FATAL error of the connection itself.  So the
 * launcher, which must keep running before CREATE EXTENSION creates the
 * role, checks it in the catalog first and starts workers only for a usable
 * role; each worker checks again once connected.
 */

/* The role's name, or NULL for the bootstrap superuser. */
const char *
sr_worker_role_name(void)
{
	return sr_worker_role != NULL && sr_worker_role[0] != '\0' ? sr_worker_role : NULL;
}

/* In a transaction: what is wrong with the worker role, and its OID. */
sr_role_problem
sr_worker_role_check(Oid *roleid)
{
	const char *name = sr_worker_role_name();
	HeapTuple	tup;
	Form_pg_authid role;
	sr_role_problem problem = SR_ROLE_OK;

	*roleid = InvalidOid;
	if (name == NULL)
	{
		*roleid = BOOTSTRAP_SUPERUSERID;
		return SR_ROLE_OK;
	}
	tup = SearchSysCache1(AUTHNAME, CStringGetDatum(name));
	if (!HeapTupleIsValid(tup))
		return SR_ROLE_MISSING;
	role = (Form_pg_authid) GETSTRUCT(tup);
	if (role->rolsuper)
		problem = SR_ROLE_SUPERUSER;
	else if (!role->rolcanlogin)
		problem = SR_ROLE_NOLOGIN;
	else
		*roleid = role->oid;
	ReleaseSysCache(tup);
	return problem;
}

/* Say why the workers cannot run as the worker role. */
void
sr_worker_role_report(sr_role_problem problem, int elevel)
{
	const char *name = sr_worker_role_name();

	switch (problem)
	{
		case SR_ROLE_OK:
			break;
		case SR_ROLE_MISSING:
			ereport(elevel,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("sentry_relay.worker_role \"%s\" does not exist; no relay worker is started", name),
					 errhint("CREATE EXTENSION sentry_relay creates the role sentry_relay_relay.  For another role, create it and grant it sentry_relay_relay's privileges, or set sentry_relay.worker_role to an existing role and restart.")));
			break;
		case SR_ROLE_SUPERUSER:
			ereport(elevel,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("sentry_relay.worker_role \"%s\" is a superuser; no relay worker is started", name),
					 errdetail("The workers decode untrusted Kafka messages and must run with only the privileges they need."),
					 errhint("ALTER ROLE %s NOSUPERUSER, or set sentry_relay.worker_role to the role sentry_relay_relay and restart.", name)));
			break;
		case SR_ROLE_NOLOGIN:
			ereport(elevel,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("sentry_relay.worker_role \"%s\" cannot log in; no relay worker is started", name),
					 errdetail("PostgreSQL 15 connects a background worker only as a role with the LOGIN attribute."),
					 errhint("ALTER ROLE %s LOGIN, and give it no password.", name)));
			break;
	}
}

/*
 * Connect a relay worker to sentry_relay.database as the worker role.  The
 * launcher checked the role before starting us; if it became a superuser
 * since, refuse to run.
 */
void
sr_worker_connect(void)
{
	const char *name = sr_worker_role_name();
	const char *super;

	BackgroundWorkerInitializeConnection(sr_database, name, 0);
	super = GetConfigOption("is_superuser", false, false);
	if (name != NULL && super != NULL && strcmp(super, "on") == 0)
		sr_worker_role_report(SR_ROLE_SUPERUSER, ERROR);
}
