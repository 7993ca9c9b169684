/*
 * job_rows.c - a batch of jobs into sentry_relay.jobs.
 *
 * The rows are written in COPY's binary format while the batch is gathered,
 * straight from the decoder's output (the hold keeps rows in the same form).
 * At commit they go in through the table AM directly (multi_insert.c), or,
 * for a table that path does not serve (triggers, partitioning, ...),
 * through COPY FROM's own machinery, the way logical replication's table
 * sync loads a table: BeginCopyFrom with a data-source callback, then
 * CopyFrom, which handles triggers, defaults and constraints exactly as
 * COPY does.  Both give the batch multi-row heap inserts (one WAL record per
 * page rather than per row).
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "commands/copy.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "port/pg_bswap.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "worker.h"

/* The columns each row carries, in order; the rest take their defaults. */
const sr_job_column sr_job_columns[SR_JOB_NCOLUMNS] = {
	{"stream", TEXTOID}, {"topic", TEXTOID}, {"eventstream_type", TEXTOID},
	{"partition", INT4OID}, {"offset", INT8OID}, {"queue", TEXTOID},
	{"project_id", INT8OID}, {"group_id", INT8OID}, {"event_id", TEXTOID},
	{"primary_hash", TEXTOID}, {"is_new", BOOLOID}, {"is_regression", BOOLOID},
	{"is_new_group_environment", BOOLOID}, {"group_states", JSONBOID},
	{"occurrence_id", TEXTOID}, {"cache_key", TEXTOID},
	{"message_timestamp", TIMESTAMPTZOID}, {"body", BYTEAOID}
};

/* COPY binary format: signature, flags, header extension length */
static const char sr_bulk_signature[11] = "PGCOPY\n\377\r\n\0";

StaticAssertDecl(sizeof(sr_bulk_signature) + 4 + 4 == SR_JOB_ROWS_HEADER_LEN,
				 "multi_insert.c skips SR_JOB_ROWS_HEADER_LEN bytes of header");

/* What the data-source callback reads from (COPY gives it no argument). */
static const StringInfoData *sr_bulk_src = NULL;
static int	sr_bulk_pos = 0;

static inline void
sr_bulk_int16(StringInfo s, int16 v)
{
	uint16		n = pg_hton16((uint16) v);

	appendBinaryStringInfoNT(s, (const char *) &n, sizeof(n));
}

static inline void
sr_bulk_int32(StringInfo s, int32 v)
{
	uint32		n = pg_hton32((uint32) v);

	appendBinaryStringInfoNT(s, (const char *) &n, sizeof(n));
}

static inline void
sr_bulk_int64(StringInfo s, int64 v)
{
	uint64		n = pg_hton64((uint64) v);

	appendBinaryStringInfoNT(s, (const char *) &n, sizeof(n));
}

/* One field: its length, then its bytes; NULL is length -1. */
static inline void
sr_bulk_bytes(StringInfo s, const void *p, size_t len)
{
	if (p == NULL)
	{
		sr_bulk_int32(s, -1);
		return;
	}
	if (len > (size_t) (MaxAllocSize - VARHDRSZ))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("job field of %zu bytes is too large", len),
				 errhint("Lower sentry_relay.max_message_size.")));
	sr_bulk_int32(s, (int32) len);
	appendBinaryStringInfoNT(s, p, len);
}

static inline void
sr_bulk_text(StringInfo s, const char *v)
{
	sr_bulk_bytes(s, v, v ? strlen(v) : 0);
}

static inline void
sr_bulk_field_int32(StringInfo s, int32 v)
{
	sr_bulk_int32(s, 4);
	sr_bulk_int32(s, v);
}

static inline void
sr_bulk_field_int64(StringInfo s, int64 v)
{
	sr_bulk_int32(s, 8);
	sr_bulk_int64(s, v);
}

/* A task flag: None is NULL. */
static inline void
sr_bulk_field_flag(StringInfo s, sr_flag v)
{
	if (v == SR_FLAG_NULL)
	{
		sr_bulk_int32(s, -1);
		return;
	}
	sr_bulk_int32(s, 1);
	appendStringInfoCharMacro(s, v == SR_FLAG_TRUE ? 1 : 0);
}

/* jsonb's binary form is a version byte (1) followed by the JSON text. */
static inline void
sr_bulk_field_jsonb(StringInfo s, const char *json)
{
	size_t		len;

	if (json == NULL)
	{
		sr_bulk_int32(s, -1);
		return;
	}
	len = strlen(json);
	sr_bulk_int32(s, (int32) len + 1);
	appendStringInfoCharMacro(s, 1);
	appendBinaryStringInfoNT(s, json, len);
}

/*
 * Write one job as a row in COPY binary format, without the file header.
 * The caller is in the memory context that owns s.
 */
void
sr_rows_encode(StringInfo s, const sr_stream_def *def, int32 partition,
			  int64 offset, const sr_job *job, bool has_ts, TimestampTz ts,
			  const void *body, size_t body_len)
{
	sr_bulk_int16(s, (int16) SR_JOB_NCOLUMNS);
	sr_bulk_text(s, def->name);
	sr_bulk_text(s, def->topic);
	sr_bulk_text(s, def->eventstream_type);
	sr_bulk_field_int32(s, partition);
	sr_bulk_field_int64(s, offset);
	sr_bulk_text(s, job->queue ? job->queue : def->default_queue);
	sr_bulk_field_int64(s, job->project_id);
	if (job->has_group_id)
		sr_bulk_field_int64(s, job->group_id);
	else
		sr_bulk_int32(s, -1);
	sr_bulk_text(s, job->event_id);
	sr_bulk_text(s, job->primary_hash);
	sr_bulk_field_flag(s, job->is_new);
	sr_bulk_field_flag(s, job->is_regression);
	sr_bulk_field_flag(s, job->is_new_group_environment);
	sr_bulk_field_jsonb(s, job->group_states);
	sr_bulk_text(s, job->occurrence_id);
	sr_bulk_text(s, job->cache_key);
	if (has_ts)
		sr_bulk_field_int64(s, ts);
	else
		sr_bulk_int32(s, -1);
	if (def->keep_body && body != NULL)
		sr_bulk_bytes(s, body, body_len);
	else
		sr_bulk_int32(s, -1);
}

/* The batch's rows, started with COPY's file header on first use. */
static StringInfo
sr_batch_rows(sr_batch *b)
{
	StringInfo	s = &b->rows;

	if (s->data == NULL)
	{
		initStringInfo(s);
		appendBinaryStringInfo(s, sr_bulk_signature, sizeof(sr_bulk_signature));
		sr_bulk_int32(s, 0);	/* flags */
		sr_bulk_int32(s, 0);	/* header extension length */
	}
	return s;
}

/* Append a row made by sr_rows_encode (batch memory context). */
void
sr_rows_append(sr_batch *b, const char *row, size_t len)
{
	appendBinaryStringInfoNT(sr_batch_rows(b), row, len);
	b->n++;
}

/* COPY's data source: hand out the batch's rows, then end of data. */
static int
sr_bulk_read(void *outbuf, int minread, int maxread)
{
	int			n = Min(sr_bulk_src->len - sr_bulk_pos, maxread);

	(void) minread;
	if (n <= 0)
		return 0;
	memcpy(outbuf, sr_bulk_src->data + sr_bulk_pos, n);
	sr_bulk_pos += n;
	return n;
}

/* Insert the rows (COPY binary, complete) through COPY FROM; the row count. */
static uint64
sr_bulk_copy(Relation rel, const StringInfoData *rows)
{
	ParseState *pstate;
	ParseNamespaceItem *nsitem;
	CopyFromState cstate;
	List	   *columns = NIL;
	List	   *options;
	uint64		processed;

	pstate = make_parsestate(NULL);
	nsitem = addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, NULL, false, false);
	addNSItemToQuery(pstate, nsitem, true, true, true);
	for (int i = 0; i < SR_JOB_NCOLUMNS; i++)
		columns = lappend(columns, makeString(pstrdup(sr_job_columns[i].name)));
	options = list_make1(makeDefElem("format", (Node *) makeString("binary"), -1));

	sr_bulk_src = rows;
	sr_bulk_pos = 0;
	PG_TRY();
	{
		cstate = BeginCopyFrom(pstate, rel, NULL, NULL, false, sr_bulk_read, columns, options);
		processed = CopyFrom(cstate);
		EndCopyFrom(cstate);
	}
	PG_FINALLY();
	{
		sr_bulk_src = NULL;
	}
	PG_END_TRY();
	free_parsestate(pstate);
	return processed;
}

/*
 * Insert the batch's jobs, directly through the table AM where the table
 * allows it (multi_insert.c), else through COPY FROM, and queue one NOTIFY
 * for them, delivered when the batch commits.  Returns the path taken.
 */
sr_insert_path
sr_rows_insert(const sr_stream_def *def, sr_batch *b)
{
	Oid			relid;
	Relation	rel;
	AclResult	aclresult;
	uint64		processed;
	sr_insert_path path = SR_INSERT_DIRECT;

	if (b->n == 0)
		return SR_INSERT_NONE;
	sr_bulk_int16(&b->rows, -1);	/* file trailer */

	relid = RangeVarGetRelid(makeRangeVar("sentry_relay", "jobs", -1), RowExclusiveLock, false);
	aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_INSERT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, "jobs");
	rel = table_open(relid, NoLock);
	if (sr_multi_insert_jobs(rel, &b->rows, b->n))
		processed = (uint64) b->n;
	else
	{
		processed = sr_bulk_copy(rel, &b->rows);
		path = SR_INSERT_COPY;
	}
	if (processed != (uint64) b->n)
		elog(ERROR, "sentry_relay: COPY inserted " UINT64_FORMAT " jobs, not %d", processed, b->n);
	table_close(rel, NoLock);
	CommandCounterIncrement();
	/* one wake-up per committed batch, delivered at commit */
	Async_Notify("sentry_relay_jobs", def->name);
	return path;
}
