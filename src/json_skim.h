/*
 * json_skim.h - a validating skim over strict JSON that finds the bulky
 * member values of an event message's event data (see json_skim.c).
 * Pure C, no PostgreSQL dependency.
 */
#ifndef SR_JSON_SKIM_H
#define SR_JSON_SKIM_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sr_skim_span
{
	size_t		start;			/* byte offset of the value */
	size_t		len;
} sr_skim_span;

/*
 * Check buf[0..len) as strict JSON.  If the document is an array whose
 * element 2 is an object, record in drop[] (at most max_drop, in document
 * order) the value spans of that object's members that are at least
 * min_drop bytes long and whose names are not in keep (a NULL-terminated
 * list).  Returns false when the text is not JSON, or is JSON the skim
 * declines to judge; the caller then parses the original text.
 */
extern bool sr_json_skim(const char *buf, size_t len, const char *const *keep,
						 size_t min_drop, sr_skim_span *drop, int max_drop,
						 int *ndrop);

#endif							/* SR_JSON_SKIM_H */
