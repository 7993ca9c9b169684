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

	MarkGUCPrefixReserved("sentry_relay");
}
