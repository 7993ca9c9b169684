/*
 * sentry_relay.c - module entry point.
 *
 * sentry_relay runs Sentry's post-process forwarder inside PostgreSQL.  This
 * file only holds the module magic and _PG_init, which defines the settings
 * and, when the library is preloaded, reserves shared memory and registers
 * the launcher.  Without the preload the decoders work and the relay does
 * not: CREATE EXTENSION and ALTER EXTENSION UPDATE stop with an ERROR that
 * names the fix, and the other relay functions warn.  Each job lives in its own file:
 *   decoders, pure C: decode_event.c, decode_fast.c, decode_python.c,
 *     decode_commit.c, decode_common.c, json_skim.c, json_text.c;
 *   the state machine, pure C: state.c;
 *   the decoders' PostgreSQL side: decode_backend.c;
 *   SQL functions: decode_sql.c (decoders), stream.c (streams);
 *   settings: guc.c; shared memory: shmem.c; the launcher: launcher.c;
 *   the worker, whose modules and call order worker.h lists: worker.c
 *     (the process), events.c, commit_log.c, rebalance.c, gate.c, hold.c,
 *     batch.c, message.c, offset_mirror.c, worker_status.c, store.c,
 *     job_rows.c, multi_insert.c; with kafka.c (librdkafka set-up) and
 *     fetch_waker.c (the fetcher wake-up thread).
 */
#include "postgres.h"

#include "commands/extension.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"

#include "guc.h"
#include "shmem.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	BackgroundWorker bgw;

	/*
	 * Loaded by a session, not by the postmaster: the decoders can run, the
	 * relay cannot.  Installing or updating the extension then fails, before
	 * anything is defined, so that the session survives and can load the
	 * library again.
	 */
	if (!process_shared_preload_libraries_in_progress && creating_extension)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("sentry_relay must be loaded via shared_preload_libraries"),
				 errhint("Add sentry_relay to shared_preload_libraries in postgresql.conf, restart PostgreSQL, and run the command again.")));

	sr_guc_init(process_shared_preload_libraries_in_progress);
	if (!process_shared_preload_libraries_in_progress)
		return;

	sr_shmem_register();

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 1;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "sentry_relay");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "sr_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "sentry_relay launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "sentry_relay launcher");
	RegisterBackgroundWorker(&bgw);
}
