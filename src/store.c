/*
 * store.c - the worker's reads and writes of its tables, through SPI.
 * Everything a batch changes is written in the one transaction that
 * sr_store_begin opens and sr_store_commit commits: dead letters, remote
 * offsets, the commit-log position and the partitions' local offsets (the
 * jobs themselves go in through job_rows.c).  The local-offset update is
 * fenced on the value the worker last read or wrote, so two workers that
 * both believe they own a partition can never both enqueue the same
 * messages.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "worker.h"

static MemoryContext sr_store_caller_cxt = NULL;

static SPIPlanPtr sr_plan_dead = NULL;
static SPIPlanPtr sr_plan_update_part = NULL;
static SPIPlanPtr sr_plan_claim = NULL;
static SPIPlanPtr sr_plan_release = NULL;
static SPIPlanPtr sr_plan_remote = NULL;
static SPIPlanPtr sr_plan_cl_pos = NULL;

void
sr_store_begin(const char *activity)
{
	sr_store_caller_cxt = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

void
sr_store_commit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(sr_store_caller_cxt);
}

static SPIPlanPtr
sr_prepare(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, types);

		if (p == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*plan = p;
	}
	return *plan;
}

static void
sr_exec(SPIPlanPtr plan, Datum *values, const char *nulls, int expect)
{
	int			ret = SPI_execute_plan(plan, values, nulls, false, 0);

	if (ret != expect)
		elog(ERROR, "sentry_relay statement failed: %s", SPI_result_code_string(ret));
}

/* Load a stream definition into the caller's memory context. */
bool
sr_store_load_stream(const char *name, sr_stream_def *def)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	int			ret;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum	   *groups;
	int			ngroups;
	MemoryContext spi_cxt;

	values[0] = CStringGetTextDatum(name);
	ret = SPI_execute_with_args("SELECT topic, commit_log_topic, synchronize_commit_groups, "
								"consumer_group, initial_offset_reset, workers, options, enabled "
								"FROM sentry_relay.streams WHERE name = $1",
								1, types, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading stream \"%s\" failed", name);
	if (SPI_processed == 0)
		return false;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	if (!DatumGetBool(SPI_getbinval(tup, desc, 8, &isnull)))
		return false;

	spi_cxt = MemoryContextSwitchTo(sr_store_caller_cxt);
	memset(def, 0, sizeof(*def));
	def->name = pstrdup(name);
	def->topic = SPI_getvalue(tup, desc, 1);
	def->commit_log_topic = SPI_getvalue(tup, desc, 2);
	deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 3, &isnull)),
					  TEXTOID, -1, false, TYPALIGN_INT, &groups, NULL, &ngroups);
	def->ngroups = Min(ngroups, SR_MAX_FOLLOWED_GROUPS);
	for (int i = 0; i < def->ngroups; i++)
		def->groups[i] = TextDatumGetCString(groups[i]);
	def->consumer_group = SPI_getvalue(tup, desc, 4);
	def->initial_offset_reset = SPI_getvalue(tup, desc, 5);
	def->workers = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
	sr_parse_options(DatumGetJsonbP(SPI_getbinval(tup, desc, 7, &isnull)), def);
	MemoryContextSwitchTo(spi_cxt);
	return true;
}

/* A one-dimensional array of the given element type (current context). */
static Datum
sr_array(Datum *elems, bool *nulls, int n, Oid type)
{
	int16		len;
	bool		byval;
	char		align;
	int			dims[1] = {n};
	int			lbs[1] = {1};

	get_typlenbyvalalign(type, &len, &byval, &align);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, type, len, byval, align));
}

void
sr_store_dead_letters(const sr_stream_def *def, sr_batch *b)
{
	Oid			types[11] = {TEXTOID, TEXTOID, INT4OID, INT8OID, BYTEAOID, BYTEAOID,
	TEXTARRAYOID, BYTEAARRAYOID, TEXTOID, TEXTOID, TEXTOID};
	ListCell   *lc;
	SPIPlanPtr	plan;

	if (b->dead == NIL)
		return;
	plan = sr_prepare(&sr_plan_dead,
					  "INSERT INTO sentry_relay.dead_letters (stream, topic, partition, \"offset\", "
					  "key, value, header_names, header_values, error, sqlstate, error_class) "
					  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
					  11, types);
	foreach(lc, b->dead)
	{
		sr_dead    *d = lfirst(lc);
		Datum		values[11];
		char		nulls[11];
		Datum	   *names = palloc(sizeof(Datum) * Max(d->nheaders, 1));
		Datum	   *hvals = palloc(sizeof(Datum) * Max(d->nheaders, 1));
		bool	   *hnulls = palloc(sizeof(bool) * Max(d->nheaders, 1));

		memset(nulls, ' ', sizeof(nulls));
		for (int i = 0; i < d->nheaders; i++)
		{
			names[i] = CStringGetTextDatum(d->header_names[i]);
			hnulls[i] = d->header_values[i] == NULL;
			hvals[i] = PointerGetDatum(d->header_values[i]);
		}
		values[0] = CStringGetTextDatum(def->name);
		values[1] = CStringGetTextDatum(d->topic);
		values[2] = Int32GetDatum(d->partition);
		values[3] = Int64GetDatum(d->offset);
		values[4] = PointerGetDatum(d->key);
		nulls[4] = d->key ? ' ' : 'n';
		values[5] = PointerGetDatum(d->value);
		nulls[5] = d->value ? ' ' : 'n';
		values[6] = sr_array(names, NULL, d->nheaders, TEXTOID);
		values[7] = sr_array(hvals, hnulls, d->nheaders, BYTEAOID);
		values[8] = CStringGetTextDatum(d->error);
		values[9] = CStringGetTextDatum(d->sqlstate);
		values[10] = CStringGetTextDatum(d->error_class);
		sr_exec(plan, values, nulls, SPI_OK_INSERT);
	}
}

/*
 * Store the batch's remote offsets (one statement; a later entry for the
 * same partition and group wins, as it did in memory) and the commit log's
 * read positions.
 */
void
sr_store_remote(const sr_stream_def *def, sr_batch *b)
{
	Oid			rtypes[5] = {TEXTOID, INT4ARRAYOID, TEXTARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID};
	Oid			ctypes[3] = {TEXTOID, INT4OID, INT8OID};
	int			n = 0;
	ListCell   *lc;

	if (b->remote != NIL)
	{
		int			cap = list_length(b->remote);
		Datum	   *parts = palloc(sizeof(Datum) * cap);
		Datum	   *groups = palloc(sizeof(Datum) * cap);
		Datum	   *offsets = palloc(sizeof(Datum) * cap);
		Datum	   *tss = palloc(sizeof(Datum) * cap);
		bool	   *ts_nulls = palloc(sizeof(bool) * cap);
		const char **names = palloc(sizeof(char *) * cap);
		Datum		values[5];

		foreach(lc, b->remote)
		{
			sr_remote_update *u = lfirst(lc);
			int			i;

			for (i = 0; i < n; i++)
				if (DatumGetInt32(parts[i]) == u->partition && strcmp(names[i], u->group) == 0)
					break;
			if (i == n)
			{
				n++;
				parts[i] = Int32GetDatum(u->partition);
				names[i] = u->group;
				groups[i] = CStringGetTextDatum(u->group);
			}
			offsets[i] = Int64GetDatum(u->offset);
			tss[i] = TimestampTzGetDatum(u->ts);
			ts_nulls[i] = !u->has_ts;
		}
		values[0] = CStringGetTextDatum(def->name);
		values[1] = sr_array(parts, NULL, n, INT4OID);
		values[2] = sr_array(groups, NULL, n, TEXTOID);
		values[3] = sr_array(offsets, NULL, n, INT8OID);
		values[4] = sr_array(tss, ts_nulls, n, TIMESTAMPTZOID);
		sr_exec(sr_prepare(&sr_plan_remote,
						   "INSERT INTO sentry_relay.remote_offsets AS r "
						   "(stream, partition, consumer_group, \"offset\", orig_message_ts, source) "
						   "SELECT $1, u.p, u.g, u.o, u.ts, 'commit_log' "
						   "FROM unnest($2, $3, $4, $5) AS u(p, g, o, ts) "
						   "ON CONFLICT (stream, partition, consumer_group) DO UPDATE "
						   "SET \"offset\" = excluded.\"offset\", orig_message_ts = excluded.orig_message_ts, "
						   "source = 'commit_log', updated_at = now()",
						   5, rtypes),
				values, NULL, SPI_OK_INSERT);
	}
	for (int i = 0; i < b->ncl_positions; i++)
	{
		Datum		values[3];

		values[0] = CStringGetTextDatum(def->name);
		values[1] = Int32GetDatum(b->cl_partition[i]);
		values[2] = Int64GetDatum(b->cl_offset[i]);
		sr_exec(sr_prepare(&sr_plan_cl_pos,
						   "INSERT INTO sentry_relay.commit_log_positions AS c (stream, partition, \"offset\") "
						   "VALUES ($1, $2, $3) ON CONFLICT (stream, partition) DO UPDATE "
						   "SET \"offset\" = excluded.\"offset\", updated_at = now()",
						   3, ctypes),
				values, NULL, SPI_OK_INSERT);
	}
}

/*
 * Write the progress of the given partitions in one statement, each fenced
 * on the offset we last stored for it.  A partition whose row no longer has
 * that offset was moved by someone else: the batch fails.
 */
void
sr_store_partitions(const sr_stream_def *def, sr_part **ps, int n)
{
	Oid			types[9] = {TEXTOID, INT4OID, INT4ARRAYOID, INT8ARRAYOID, TEXTARRAYOID,
	INT8ARRAYOID, TEXTARRAYOID, BOOLARRAYOID, INT8ARRAYOID};
	Datum		values[9];
	Datum	   *parts = palloc(sizeof(Datum) * n);
	Datum	   *locals = palloc(sizeof(Datum) * n);
	bool	   *local_nulls = palloc(sizeof(bool) * n);
	Datum	   *states = palloc(sizeof(Datum) * n);
	Datum	   *hws = palloc(sizeof(Datum) * n);
	bool	   *hw_nulls = palloc(sizeof(bool) * n);
	Datum	   *errors = palloc(sizeof(Datum) * n);
	bool	   *error_nulls = palloc(sizeof(bool) * n);
	Datum	   *error_dirty = palloc(sizeof(Datum) * n);
	Datum	   *fences = palloc(sizeof(Datum) * n);
	bool	   *fence_nulls = palloc(sizeof(bool) * n);

	if (n == 0)
		return;
	for (int i = 0; i < n; i++)
	{
		sr_part    *p = ps[i];
		sr_offsets *o = &p->sm.cur.offsets;
		size_t		elen = strlen(p->last_error);

		parts[i] = Int32GetDatum(p->partition);
		locals[i] = Int64GetDatum(o->local);
		local_nulls[i] = !o->has_local;
		states[i] = CStringGetTextDatum(sr_pstate_name(p->sm.cur.state));
		hws[i] = Int64GetDatum(p->high_watermark);
		hw_nulls[i] = p->high_watermark < 0;
		/* snprintf may have cut a multibyte character: keep whole ones only */
		errors[i] = PointerGetDatum(cstring_to_text_with_len(p->last_error,
															 pg_mbcliplen(p->last_error, elen, elen)));
		error_nulls[i] = p->last_error[0] == '\0';
		error_dirty[i] = BoolGetDatum(p->error_dirty);
		fences[i] = Int64GetDatum(p->committed);
		fence_nulls[i] = !p->has_committed;
	}
	values[0] = CStringGetTextDatum(def->name);
	values[1] = Int32GetDatum(MyProcPid);
	values[2] = sr_array(parts, NULL, n, INT4OID);
	values[3] = sr_array(locals, local_nulls, n, INT8OID);
	values[4] = sr_array(states, NULL, n, TEXTOID);
	values[5] = sr_array(hws, hw_nulls, n, INT8OID);
	values[6] = sr_array(errors, error_nulls, n, TEXTOID);
	values[7] = sr_array(error_dirty, NULL, n, BOOLOID);
	values[8] = sr_array(fences, fence_nulls, n, INT8OID);
	sr_exec(sr_prepare(&sr_plan_update_part,
					   "UPDATE sentry_relay.partition_state AS s SET local_offset = u.local, state = u.state, "
					   "worker_pid = $2, high_watermark = coalesce(u.hw, s.high_watermark), "
					   "last_error = CASE WHEN u.error_dirty THEN u.last_error ELSE s.last_error END, "
					   "updated_at = now() "
					   "FROM unnest($3, $4, $5, $6, $7, $8, $9) "
					   "AS u(partition, local, state, hw, last_error, error_dirty, fence) "
					   "WHERE s.stream = $1 AND s.partition = u.partition "
					   "AND s.local_offset IS NOT DISTINCT FROM u.fence "
					   "RETURNING s.partition",
					   9, types),
			values, NULL, SPI_OK_UPDATE_RETURNING);
	if (SPI_processed != (uint64) n)
	{
		/* name a partition that was not updated */
		sr_part    *lost = NULL;

		for (int i = 0; i < n && lost == NULL; i++)
		{
			bool		found = false;

			for (uint64 t = 0; t < SPI_processed && !found; t++)
			{
				bool		isnull;
				Datum		d = SPI_getbinval(SPI_tuptable->vals[t], SPI_tuptable->tupdesc, 1, &isnull);

				found = !isnull && DatumGetInt32(d) == ps[i]->partition;
			}
			if (!found)
				lost = ps[i];
		}
		if (lost == NULL)
			elog(ERROR, "sentry_relay: updated " UINT64_FORMAT " partitions, not %d", SPI_processed, n);
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("partition %d of stream \"%s\" was moved by another worker or an operator",
						lost->partition, def->name),
				 errdetail("This worker expected local offset %s.",
						   lost->has_committed ? psprintf(INT64_FORMAT, lost->committed) : "NULL"),
				 errhint("The worker restarts and resumes from the stored offset; nothing is enqueued twice.")));
	}
	for (int i = 0; i < n; i++)
	{
		ps[i]->has_committed = ps[i]->sm.cur.offsets.has_local;
		ps[i]->committed = ps[i]->sm.cur.offsets.local;
		ps[i]->dirty = false;
		ps[i]->error_dirty = false;
	}
}

/* Take a partition on assignment; reads its stored local offset. */
void
sr_store_claim_partition(const sr_stream_def *def, sr_part *p)
{
	Oid			types[4] = {TEXTOID, INT4OID, TEXTOID, INT4OID};
	Datum		values[4];
	bool		isnull;
	Datum		d;

	values[0] = CStringGetTextDatum(def->name);
	values[1] = Int32GetDatum(p->partition);
	values[2] = CStringGetTextDatum(def->topic);
	values[3] = Int32GetDatum(MyProcPid);
	sr_exec(sr_prepare(&sr_plan_claim,
					   "INSERT INTO sentry_relay.partition_state AS s (stream, partition, topic, worker_pid) "
					   "VALUES ($1, $2, $3, $4) ON CONFLICT (stream, partition) DO UPDATE "
					   "SET worker_pid = excluded.worker_pid, topic = excluded.topic, updated_at = now() "
					   "RETURNING local_offset",
					   4, types),
			values, NULL, SPI_OK_INSERT_RETURNING);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	p->has_committed = !isnull;
	p->committed = isnull ? 0 : DatumGetInt64(d);
}

void
sr_store_release_partition(const sr_stream_def *def, int32 partition)
{
	Oid			types[3] = {TEXTOID, INT4OID, INT4OID};
	Datum		values[3];

	values[0] = CStringGetTextDatum(def->name);
	values[1] = Int32GetDatum(partition);
	values[2] = Int32GetDatum(MyProcPid);
	sr_exec(sr_prepare(&sr_plan_release,
					   "UPDATE sentry_relay.partition_state SET worker_pid = NULL, updated_at = now() "
					   "WHERE stream = $1 AND partition = $2 AND worker_pid = $3",
					   3, types),
			values, NULL, SPI_OK_UPDATE);
}

/*
 * The stream's rows of an offsets table, as sr_remote_update entries in the
 * caller's context: sql selects partition, offset and (with_group) the
 * consumer group, for the stream $1.
 */
static List *
sr_store_read_offsets(const sr_stream_def *def, const char *sql, bool with_group)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	List	   *out = NIL;
	MemoryContext spi_cxt;

	values[0] = CStringGetTextDatum(def->name);
	if (SPI_execute_with_args(sql, 1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "sentry_relay: reading offsets failed: %s", sql);
	spi_cxt = MemoryContextSwitchTo(sr_store_caller_cxt);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		sr_remote_update *u = palloc0(sizeof(sr_remote_update));
		HeapTuple	t = SPI_tuptable->vals[i];
		bool		isnull;

		u->partition = DatumGetInt32(SPI_getbinval(t, SPI_tuptable->tupdesc, 1, &isnull));
		u->offset = DatumGetInt64(SPI_getbinval(t, SPI_tuptable->tupdesc, 2, &isnull));
		if (with_group)
			u->group = SPI_getvalue(t, SPI_tuptable->tupdesc, 3);
		out = lappend(out, u);
	}
	MemoryContextSwitchTo(spi_cxt);
	return out;
}

/* All remote offsets of the stream, into the caller's context. */
List *
sr_store_read_remote(const sr_stream_def *def)
{
	return sr_store_read_offsets(def, "SELECT partition, \"offset\", consumer_group "
								 "FROM sentry_relay.remote_offsets WHERE stream = $1", true);
}

/* Stored commit-log read positions: a list of (partition, offset) pairs. */
List *
sr_store_read_cl_positions(const sr_stream_def *def)
{
	return sr_store_read_offsets(def, "SELECT partition, \"offset\" "
								 "FROM sentry_relay.commit_log_positions WHERE stream = $1", false);
}
