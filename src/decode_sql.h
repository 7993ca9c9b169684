/*
 * decode_sql.h - PostgreSQL-side helpers around the pure decoders, shared by
 * the SQL wrappers (decode_sql.c) and the relay worker; defined in
 * decode_backend.c.
 */
#ifndef SR_DECODE_SQL_H
#define SR_DECODE_SQL_H

#include "postgres.h"

#include "datatype/timestamp.h"

#include "decode.h"

/* The backend's decoder, with the current sentry_relay.max_message_size. */
extern sr_decoder *sr_get_decoder(void);
extern int	sr_errclass_errcode(sr_errclass cls);
extern const char *sr_errclass_hint(sr_errclass cls, bool commit_log);
extern TimestampTz sr_unix_us_to_timestamptz(int64 us);

#endif							/* SR_DECODE_SQL_H */
