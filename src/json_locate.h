/*
 * json_locate.h - a member's value in JSON text, and whether a value's text
 * fits PostgreSQL's jsonb (see json_locate.c).  Pure C.
 */
#ifndef SR_JSON_LOCATE_H
#define SR_JSON_LOCATE_H

#include <stdbool.h>
#include <stddef.h>

#include "json_skim.h"

/*
 * The span of the value of the last member called name (compared after
 * unescaping) of element index of the top-level array, which must be an
 * object.  False if there is none.
 */
extern bool sr_json_locate_member(const char *buf, size_t len, int index,
								  const char *name, sr_skim_span *out);

/* True if jsonb_in would accept this valid JSON text. */
extern bool sr_json_jsonb_safe(const char *buf, size_t len);

#endif							/* SR_JSON_LOCATE_H */
