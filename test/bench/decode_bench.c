/*
 * decode_bench.c - a micro-benchmark of the event decoder (`make
 * bench-decode`).  Reads a corpus in the mock's produce_file format (one
 * message per line: "TOPIC PARTITION KEYHEX VALUEHEX [H=HEX ...]", as
 * relay_corpus.py writes it), then decodes every message body, alternating
 * rounds between a decoder that skims (and so takes the fast path,
 * decode_fast.c) and one that always parses the whole message with json-c.
 * Prints the time per message of each and their ratio, and checks that both
 * decoders gave the same status for every message.  Headers are ignored:
 * this measures body decoding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decode.h"
#include "decode_internal.h"	/* skim_min: the skim on or off */

typedef struct msg
{
	unsigned char *buf;
	size_t		len;
} msg;

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The fourth space-separated field of a line, hex-decoded. */
static bool
parse_line(char *line, msg *m)
{
	char	   *f = line;
	size_t		n;

	for (int i = 0; i < 3; i++)
	{
		f = strchr(f, ' ');
		if (f == NULL)
			return false;
		f++;
	}
	n = strcspn(f, " \n");
	m->buf = malloc(n / 2 + 1);
	if (m->buf == NULL)
		return false;
	for (m->len = 0; m->len < n / 2; m->len++)
	{
		int			hi = hexval(f[2 * m->len]),
					lo = hexval(f[2 * m->len + 1]);

		if (hi < 0 || lo < 0)
			return false;
		m->buf[m->len] = (unsigned char) (hi << 4 | lo);
	}
	return true;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One pass over the corpus; the statuses go to st[] when it is not NULL. */
static double
run(sr_decoder *dec, const msg *ms, size_t n, int *st)
{
	double		t0 = now();

	for (size_t i = 0; i < n; i++)
	{
		sr_job		job;
		sr_error	err;
		sr_decode_status s = sr_decode_event(dec, ms[i].buf, ms[i].len, NULL, 0, &job, &err);

		if (st != NULL)
			st[i] = s;
	}
	return now() - t0;
}

int
main(int argc, char **argv)
{
	FILE	   *f;
	char	   *line = NULL;
	size_t		cap = 0,
				n = 0,
				alloc = 0,
				bytes = 0;
	msg		   *ms = NULL;
	int		   *sa,
			   *sb;
	int			rounds = argc > 2 ? atoi(argv[2]) : 5;
	double		tf = 1e30,
				tw = 1e30;
	sr_decoder *fast,
			   *whole;

	if (argc < 2 || (f = fopen(argv[1], "r")) == NULL)
	{
		fprintf(stderr, "usage: decode_bench CORPUS_FILE [ROUNDS]\n");
		return 2;
	}
	while (getline(&line, &cap, f) > 0)
	{
		if (n == alloc)
		{
			alloc = alloc ? alloc * 2 : 1024;
			ms = realloc(ms, alloc * sizeof(msg));
			if (ms == NULL)
				return 2;
		}
		if (!parse_line(line, &ms[n]))
		{
			fprintf(stderr, "bad corpus line %zu\n", n + 1);
			return 2;
		}
		bytes += ms[n].len;
		n++;
	}
	fclose(f);
	free(line);
	fast = sr_decoder_create(SR_DEFAULT_MAX_MESSAGE_BYTES);
	whole = sr_decoder_create(SR_DEFAULT_MAX_MESSAGE_BYTES);
	sa = calloc(n, sizeof(int));
	sb = calloc(n, sizeof(int));
	if (n == 0 || fast == NULL || whole == NULL || sa == NULL || sb == NULL)
		return 2;
	whole->skim_min = 0;

	/* best of the rounds, alternating, so that both see the same machine */
	for (int r = 0; r < rounds; r++)
	{
		double		a = run(fast, ms, n, r == 0 ? sa : NULL);
		double		b = run(whole, ms, n, r == 0 ? sb : NULL);

		tf = a < tf ? a : tf;
		tw = b < tw ? b : tw;
	}
	for (size_t i = 0; i < n; i++)
		if (sa[i] != sb[i])
		{
			fprintf(stderr, "message %zu: status %d with the skim, %d without\n", i, sa[i], sb[i]);
			return 1;
		}
	printf("%zu messages, %.1f MB, best of %d rounds\n", n, bytes / 1e6, rounds);
	printf("skim and fast path  %8.2f us/message  %8.1f MB/s\n", tf * 1e6 / n, bytes / tf / 1e6);
	printf("json-c, whole parse %8.2f us/message  %8.1f MB/s\n", tw * 1e6 / n, bytes / tw / 1e6);
	printf("ratio               %8.2fx faster\n", tw / tf);
	return 0;
}
