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
 * What the event decoder's fast path (decode_fast.c) reads, located by the
 * same pass: the first elements of the top-level array, and the members of
 * elements 2 (event data) and 3 (task state) whose names are wanted.
 */
#define SR_SKIM_MAX_TOP 4
#define SR_SKIM_MAX_PICK 8

typedef struct sr_skim_pick
{
	/* in: the member names wanted of elements 2 and 3 (NULL-terminated) */
	const char *const *names[2];
	/* out */
	int			ntop;			/* elements of the top-level array; -1: not an array */
	sr_skim_span top[SR_SKIM_MAX_TOP];
	sr_skim_span member[2][SR_SKIM_MAX_PICK];	/* len 0: absent */
	bool		irregular;		/* in element 2 or 3: a key with an escape, or
								 * a wanted name twice */
} sr_skim_pick;

/*
 * Check buf[0..len) as strict JSON.  If the document is an array whose
 * element 2 is an object, record in drop[] (at most max_drop, in document
 * order) the value spans of that object's members that are at least
 * min_drop bytes long and whose names are not in keep (a NULL-terminated
 * list).  If pick is not NULL, fill it in too.  Returns false when the text
 * is not JSON, or is JSON the skim declines to judge; the caller then parses
 * the original text.
 */
extern bool sr_json_skim(const char *buf, size_t len, const char *const *keep,
						 size_t min_drop, sr_skim_span *drop, int max_drop,
						 int *ndrop, sr_skim_pick *pick);

/*
 * Length of the well-formed UTF-8 sequence starting at p (at most n bytes
 * available), or 0 if it is malformed: overlong forms, surrogates and code
 * points above U+10FFFF are.  Shared with sr_check_text (decode_common.c),
 * so that the skim accepts exactly the UTF-8 it does.
 */
extern size_t sr_utf8_seq_len(const unsigned char *p, size_t n);

/* JSON's lexical pieces, shared with json_text.c. */
extern const unsigned char *sr_json_skip_ws(const unsigned char *p,
											const unsigned char *end);
extern int	sr_json_hex4(const unsigned char *p);
extern int	sr_json_u_escape(const unsigned char *p, const unsigned char *end,
							 int *cp);

#endif							/* SR_JSON_SKIM_H */
