/*
 * sentry_relay.c - module entry point.
 *
 * sentry_relay runs Sentry's post-process forwarder inside PostgreSQL.  This
 * file only holds the module magic and _PG_init; each job lives in its own
 * file: decoders (decode_*.c), the state machine (state.c), SQL wrappers
 * (decode_sql.c) and settings (guc.c).
 */
#include "postgres.h"

#include "fmgr.h"

#include "guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	sr_guc_init();
}
