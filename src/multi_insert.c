/*
 * multi_insert.c - a batch of jobs into sentry_relay.jobs through the table
 * access method, the way COPY FROM's multi-insert buffers do it (copyfrom.c,
 * CopyMultiInsertBufferFlush): each row into a virtual slot, defaults and
 * constraints, then table_multi_insert per chunk and the index entries.
 *
 * It reads the batch's rows in the COPY binary form that job_rows.c
 * writes, knowing each column's type, so it needs none of COPY's per-column
 * receive functions; group_states, the one jsonb column, goes through
 * jsonb_in, as the decoder passes it on as Sentry sent it.  It serves the
 * table as the extension makes it, and changes that keep a row's meaning: added columns with defaults,
 * CHECK constraints, more indexes.  A table it does not cover goes through
 * COPY FROM instead (job_rows.c), which handles everything: triggers
 * (foreign keys are triggers), row-level security, partitioning, generated
 * columns, volatile defaults, a column of another type, a database encoding
 * other than UTF-8.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/sysattr.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_relation.h"
#include "port/pg_bswap.h"
#include "rewrite/rewriteHandler.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"

#include "worker.h"

/* Rows per table_multi_insert call, and bytes of row data (COPY's are 1000 and 64 kB). */
#define SR_MI_MAX_ROWS 1000
#define SR_MI_MAX_BYTES (1024 * 1024)

/* A column the table fills by its default (identity, now(), ...). */
typedef struct sr_mi_default
{
	AttrNumber	attnum;
	ExprState  *expr;
} sr_mi_default;

/* Everything one insert of a batch needs. */
typedef struct sr_mi
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleDesc	desc;			/* an unpinned copy, for the slots */
	AttrNumber	attnum[SR_JOB_NCOLUMNS];	/* where each job column goes */
	sr_mi_default *defaults;
	int			ndefaults;
	BulkInsertState bistate;
	TupleTableSlot **slots;
	int			nslots;
	MemoryContext rows_cxt;		/* the datums of one chunk */
} sr_mi;

/*
 * Why the direct path cannot serve rel, or NULL.  Also maps the job columns
 * to the table's attributes.
 */
static const char *
sr_mi_unsupported(Relation rel, AttrNumber *attnum)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (GetDatabaseEncoding() != PG_UTF8)
		return "the database encoding is not UTF8";
	if (rel->rd_rel->relkind != RELKIND_RELATION)
		return "the table is not a plain table";
	if (rel->trigdesc != NULL)
		return "the table has triggers";
	if (check_enable_rls(RelationGetRelid(rel), InvalidOid, true) == RLS_ENABLED)
		return "row-level security applies to the table";
	if (desc->constr != NULL && desc->constr->has_generated_stored)
		return "the table has generated columns";
	for (int i = 0; i < SR_JOB_NCOLUMNS; i++)
	{
		AttrNumber	a = attnameAttNum(rel, sr_job_columns[i].name, false);

		if (a <= 0 || TupleDescAttr(desc, a - 1)->atttypid != sr_job_columns[i].typid)
			return "a column's type differs from the extension's";
		attnum[i] = a;
	}
	return NULL;
}

/*
 * The defaults of the columns the rows do not carry, prepared for
 * evaluation; false if one is volatile (other than nextval), which COPY
 * evaluates row by row between single inserts.
 */
static bool
sr_mi_prepare_defaults(sr_mi *mi)
{
	TupleDesc	desc = RelationGetDescr(mi->rel);
	bool	   *given = palloc0(sizeof(bool) * (desc->natts + 1));

	for (int i = 0; i < SR_JOB_NCOLUMNS; i++)
		given[mi->attnum[i]] = true;
	mi->defaults = palloc(sizeof(sr_mi_default) * Max(desc->natts, 1));
	mi->ndefaults = 0;
	for (AttrNumber a = 1; a <= desc->natts; a++)
	{
		Expr	   *e;

		if (given[a] || TupleDescAttr(desc, a - 1)->attisdropped)
			continue;
		e = (Expr *) build_column_default(mi->rel, a);
		if (e == NULL)
			continue;
		e = expression_planner(e);
		if (contain_volatile_functions_not_nextval((Node *) e))
			return false;
		mi->defaults[mi->ndefaults].attnum = a;
		mi->defaults[mi->ndefaults].expr = ExecInitExpr(e, NULL);
		mi->ndefaults++;
	}
	return true;
}

/* Open the executor state for inserting into rel (copyfrom.c's set-up). */
static void
sr_mi_begin(sr_mi *mi, Relation rel, int nrows)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	mi->rel = rel;
	mi->estate = CreateExecutorState();
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	rte->requiredPerms = ACL_INSERT;
	for (int i = 0; i < SR_JOB_NCOLUMNS; i++)
		rte->insertedCols = bms_add_member(rte->insertedCols,
										   mi->attnum[i] - FirstLowInvalidHeapAttributeNumber);
	ExecInitRangeTable(mi->estate, list_make1(rte));
	mi->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(mi->rri, rel, 1, NULL, 0);
	CheckValidResultRel(mi->rri, CMD_INSERT);
	ExecOpenIndices(mi->rri, false);
	mi->estate->es_output_cid = GetCurrentCommandId(true);
	mi->bistate = GetBulkInsertState();

	/*
	 * Slots over an unpinned copy of the descriptor: a pinned one would be
	 * remembered by the resource owner once per slot.
	 */
	mi->desc = CreateTupleDescCopy(RelationGetDescr(rel));
	mi->nslots = Min(nrows, SR_MI_MAX_ROWS);
	mi->slots = palloc(sizeof(TupleTableSlot *) * mi->nslots);
	for (int i = 0; i < mi->nslots; i++)
		mi->slots[i] = MakeTupleTableSlot(mi->desc, &TTSOpsVirtual);
	mi->rows_cxt = AllocSetContextCreate(CurrentMemoryContext, "sentry_relay rows",
										 ALLOCSET_DEFAULT_SIZES);
}

static void
sr_mi_end(sr_mi *mi)
{
	for (int i = 0; i < mi->nslots; i++)
		ExecDropSingleTupleTableSlot(mi->slots[i]);
	FreeBulkInsertState(mi->bistate);
	table_finish_bulk_insert(mi->rel, 0);
	ExecCloseIndices(mi->rri);
	FreeExecutorState(mi->estate);
	MemoryContextDelete(mi->rows_cxt);
}

/* Insert the first n slots, add their index entries, and clear them. */
static void
sr_mi_flush(sr_mi *mi, int n)
{
	MemoryContext old = MemoryContextSwitchTo(GetPerTupleMemoryContext(mi->estate));

	table_multi_insert(mi->rel, mi->slots, n, mi->estate->es_output_cid, 0, mi->bistate);
	MemoryContextSwitchTo(old);
	for (int i = 0; i < n; i++)
	{
		if (mi->rri->ri_NumIndices > 0)
			list_free(ExecInsertIndexTuples(mi->rri, mi->slots[i], mi->estate,
											false, false, NULL, NIL));
		ExecClearTuple(mi->slots[i]);
	}
	ResetPerTupleExprContext(mi->estate);
	MemoryContextReset(mi->rows_cxt);
}

/* Reading the batch's rows; they were written by job_rows.c. */
typedef struct sr_mi_reader
{
	const char *p;
	const char *end;
} sr_mi_reader;

static const char *
sr_mi_take(sr_mi_reader *r, size_t n)
{
	const char *p = r->p;

	if ((size_t) (r->end - r->p) < n)
		elog(ERROR, "sentry_relay: a batch row is cut short");
	r->p += n;
	return p;
}

/* Big-endian integers at p, as COPY binary writes them. */
static int32
sr_mi_be32(const char *p)
{
	uint32		v;

	memcpy(&v, p, 4);
	return (int32) pg_ntoh32(v);
}

static int64
sr_mi_be64(const char *p)
{
	uint64		v;

	memcpy(&v, p, 8);
	return (int64) pg_ntoh64(v);
}

static int32
sr_mi_int32(sr_mi_reader *r)
{
	return sr_mi_be32(sr_mi_take(r, 4));
}

static int16
sr_mi_int16(sr_mi_reader *r)
{
	uint16		v;

	memcpy(&v, sr_mi_take(r, 2), 2);
	return (int16) pg_ntoh16(v);
}

/* A text or bytea datum of the field's bytes; text is checked as COPY does. */
static Datum
sr_mi_varlena(const char *p, int32 len, bool is_text)
{
	text	   *t;

	if (is_text)
	{
		int32		i = 0;

		while (i < len && (unsigned char) p[i] - 1u < 0x7fu)
			i++;				/* ASCII without NUL: nothing to check */
		if (i < len)
			(void) pg_verify_mbstr(PG_UTF8, p + i, len - i, false);
	}
	t = (text *) palloc(VARHDRSZ + len);
	SET_VARSIZE(t, VARHDRSZ + len);
	memcpy(VARDATA(t), p, len);
	return PointerGetDatum(t);
}

/* A jsonb field in binary form: version 1, then the JSON text. */
static Datum
sr_mi_jsonb(const char *p, int32 len)
{
	if (len < 1 || p[0] != 1)
		elog(ERROR, "sentry_relay: a batch row has a jsonb field of an unknown version");
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(pnstrdup(p + 1, len - 1)));
}

/* One field of a row into its column's datum. */
static void
sr_mi_field(sr_mi_reader *r, Oid typid, Datum *value, bool *isnull)
{
	int32		len = sr_mi_int32(r);
	const char *p;

	if (len == -1)
	{
		*isnull = true;
		return;
	}
	if (len < 0)
		elog(ERROR, "sentry_relay: a batch row has a field of length %d", len);
	p = sr_mi_take(r, len);
	*isnull = false;
	switch (typid)
	{
		case TEXTOID:
		case BYTEAOID:
			*value = sr_mi_varlena(p, len, typid == TEXTOID);
			return;
		case INT4OID:
			if (len == 4)
			{
				*value = Int32GetDatum(sr_mi_be32(p));
				return;
			}
			break;
		case INT8OID:
		case TIMESTAMPTZOID:
			if (len == 8)
			{
				*value = Int64GetDatum(sr_mi_be64(p));
				return;
			}
			break;
		case BOOLOID:
			if (len == 1)
			{
				*value = BoolGetDatum(p[0] != 0);
				return;
			}
			break;
		case JSONBOID:
			*value = sr_mi_jsonb(p, len);
			return;
	}
	elog(ERROR, "sentry_relay: a batch row has a field of %d bytes for type %u", len, typid);
}

/* Read one row into a slot, with its defaults, and check its constraints. */
static void
sr_mi_row(sr_mi *mi, sr_mi_reader *r, TupleTableSlot *slot)
{
	ExprContext *econtext = GetPerTupleExprContext(mi->estate);
	Datum	   *values = slot->tts_values;
	bool	   *isnull = slot->tts_isnull;

	ExecClearTuple(slot);
	memset(isnull, true, sizeof(bool) * mi->desc->natts);
	if (sr_mi_int16(r) != SR_JOB_NCOLUMNS)
		elog(ERROR, "sentry_relay: a batch row has the wrong number of fields");
	for (int i = 0; i < SR_JOB_NCOLUMNS; i++)
	{
		AttrNumber	a = mi->attnum[i];

		sr_mi_field(r, sr_job_columns[i].typid, &values[a - 1], &isnull[a - 1]);
	}
	for (int i = 0; i < mi->ndefaults; i++)
	{
		AttrNumber	a = mi->defaults[i].attnum;

		values[a - 1] = ExecEvalExpr(mi->defaults[i].expr, econtext, &isnull[a - 1]);
	}
	ExecStoreVirtualTuple(slot);
	slot->tts_tableOid = RelationGetRelid(mi->rel);
	if (mi->rel->rd_att->constr != NULL)
		ExecConstraints(mi->rri, slot, mi->estate);
}

/*
 * Insert the n rows of rows (COPY binary, with its file header and
 * trailer) into rel, which is open with RowExclusiveLock.  Returns false,
 * having done nothing, if the table needs COPY FROM (see the top).
 */
bool
sr_multi_insert_jobs(Relation rel, const StringInfoData *rows, int n)
{
	static const char *logged_why = NULL;
	sr_mi		mi;
	const char *why;
	sr_mi_reader r;
	int			used = 0;
	const char *chunk_start;

	memset(&mi, 0, sizeof(mi));
	why = sr_mi_unsupported(rel, mi.attnum);
	if (why == NULL)
	{
		mi.rel = rel;
		if (!sr_mi_prepare_defaults(&mi))
			why = "a column default is volatile";
	}
	if (why != NULL)
	{
		/* in the server log once per reason, not once per batch */
		ereport(why == logged_why ? DEBUG1 : LOG,
				(errmsg("sentry_relay: jobs are inserted into \"%s\" through COPY FROM because %s",
						RelationGetRelationName(rel), why),
				 errdetail("The faster direct multi-row insert serves the table as the extension creates it; see docs/performance.md.")));
		logged_why = why;
		return false;
	}
	logged_why = NULL;

	sr_mi_begin(&mi, rel, n);
	r.p = rows->data + SR_JOB_ROWS_HEADER_LEN;
	r.end = rows->data + rows->len;
	chunk_start = r.p;
	for (int i = 0; i < n; i++)
	{
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(mi.rows_cxt);
		sr_mi_row(&mi, &r, mi.slots[used++]);
		MemoryContextSwitchTo(old);
		if (used == mi.nslots || r.p - chunk_start >= SR_MI_MAX_BYTES)
		{
			sr_mi_flush(&mi, used);
			used = 0;
			chunk_start = r.p;
		}
	}
	if (used > 0)
		sr_mi_flush(&mi, used);
	if (sr_mi_int16(&r) != -1 || r.p != r.end)
		elog(ERROR, "sentry_relay: a batch has data after its %d rows", n);
	sr_mi_end(&mi);
	return true;
}
