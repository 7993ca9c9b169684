/*
 * compat.h - PostgreSQL version shims, kept in one place.
 *
 * sentry_relay targets PostgreSQL 15; the shims below let the same sources
 * build against neighbouring major versions.
 */
#ifndef SR_COMPAT_H
#define SR_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

#endif							/* SR_COMPAT_H */
