/*
 * decode_ahead.c - the relay worker's decode thread.
 *
 * A worker's main thread spends most of a batch in PostgreSQL (the insert),
 * and before this thread existed it also parsed every message's headers,
 * decoded it and wrote its row: a quarter of its time.  This thread takes
 * the events consumer's queue over instead.  It polls librdkafka, decodes
 * each message into its outcome (sr_decoded: a job's row in COPY binary
 * form, a dead letter's raw parts, or a skip), frees the message at once,
 * and queues the outcomes, with every other event (rebalances, errors,
 * logs) passed through untouched, for the main thread in librdkafka's
 * order.  The main thread applies the gate, the hold and the batch to them
 * as it did to messages, while this thread decodes the next ones.
 *
 * librdkafka drops messages fetched before a seek, pause or assignment
 * change of their partition (its version barrier) when they are polled.
 * Outcomes queued here were polled already, so the main thread brackets
 * every such call with sr_ahead_barrier(), which waits until this thread is
 * between events, and sr_ahead_forget(), which drops the queued outcomes of
 * the partitions concerned and lets the thread go on.  What the main thread
 * sees is then what it would have polled itself.
 *
 * The queue is bounded in bytes (a quarter of sentry_relay.queue_buffer,
 * about a batch of rows): when it is full the thread stops polling, and
 * librdkafka's own queue, bounded by queue_buffer, fills up as before.
 *
 * The thread calls librdkafka, json-c (through the pure decoders) and libc
 * only, never PostgreSQL, and runs with every signal blocked.
 */
#include "postgres.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "decode_ahead.h"
#include "guc.h"

/* A wait for librdkafka's queue, in case its wake-up is missed. */
#define SR_AHEAD_IDLE_MS 1000

typedef struct sr_ahead
{
	pthread_t	thread;
	bool		running;		/* the thread exists (main thread only) */
	bool		in_barrier;		/* the main thread holds take_mu */
	/* held by the thread while it takes and decodes one event */
	pthread_mutex_t take_mu;
	/* below: under mu */
	pthread_mutex_t mu;
	sr_decoded *head;
	sr_decoded *tail;
	size_t		bytes;
	size_t		budget;
	size_t		max_message_bytes;
	bool		want_room;		/* the thread waits for the queue to shrink */
	bool		stop;
	bool		failed;			/* out of memory: the thread stopped taking */
	/* the thread's own, set before it starts */
	rd_kafka_queue_t *queue;
	sr_decoder *dec;
	sr_row_ctx	ctx;
	sr_header  *hdrs;
	size_t		hdrs_cap;
	int			ctl[2];			/* wakes the thread: stop, room */
	int			kafka[2];		/* librdkafka's queue went non-empty */
	int			wake_fd;		/* wakes the main thread */
} sr_ahead;

static sr_ahead sr_ah = {
	.running = false,
	.take_mu = PTHREAD_MUTEX_INITIALIZER,
	.mu = PTHREAD_MUTEX_INITIALIZER,
};

/* Write one byte to a non-blocking pipe; a full pipe is already readable. */
static void
sr_ahead_poke(int fd)
{
	char		c = 1;
	ssize_t		rc;

	do
		rc = write(fd, &c, 1);
	while (rc < 0 && errno == EINTR);
}

static void
sr_ahead_drain_pipe(int fd)
{
	char		buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/* Bytes of a message's raw parts, headers included (sr_ahead_copy_raw). */
static size_t
sr_ahead_raw_size(const sr_msg *m)
{
	size_t		size = MAXALIGN(sizeof(sr_header) * m->nheaders) + m->len + m->key_len;

	for (size_t i = 0; i < m->nheaders; i++)
		size += m->headers[i].name_len + 1 + m->headers[i].value_len;
	return size;
}

/* Copy a message's raw parts to at: the header array, then the bytes. */
static void
sr_ahead_copy_raw(sr_msg *d, const sr_msg *m, char *at)
{
	char	   *data = at + MAXALIGN(sizeof(sr_header) * m->nheaders);

	*d = *m;
	d->headers = m->nheaders > 0 ? (sr_header *) at : NULL;
	if (m->payload != NULL)
	{
		memcpy(data, m->payload, m->len);
		d->payload = data;
		data += m->len;
	}
	if (m->key != NULL)
	{
		memcpy(data, m->key, m->key_len);
		d->key = data;
		data += m->key_len;
	}
	for (size_t i = 0; i < m->nheaders; i++)
	{
		sr_header  *dh = &d->headers[i];
		const sr_header *s = &m->headers[i];

		memcpy(data, s->name, s->name_len);
		data[s->name_len] = '\0';
		dh->name = data;
		dh->name_len = s->name_len;
		data += s->name_len + 1;
		dh->value = NULL;
		dh->value_len = 0;
		if (s->value != NULL)
		{
			memcpy(data, s->value, s->value_len);
			dh->value = data;
			dh->value_len = s->value_len;
			data += s->value_len;
		}
	}
}

/* A message's headers as decoder input, in the thread's reused array. */
static bool
sr_ahead_headers(sr_ahead *a, const rd_kafka_message_t *m, size_t *n)
{
	rd_kafka_headers_t *hdrs = NULL;
	size_t		cnt;

	*n = 0;
	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || hdrs == NULL)
		return true;
	cnt = rd_kafka_header_cnt(hdrs);
	if (cnt > a->hdrs_cap)
	{
		sr_header  *more = realloc(a->hdrs, sizeof(sr_header) * cnt);

		if (more == NULL)
			return false;
		a->hdrs = more;
		a->hdrs_cap = cnt;
	}
	for (size_t i = 0; i < cnt; i++)
	{
		const char *name;
		const void *val;
		size_t		size;

		if (rd_kafka_header_get_all(hdrs, i, &name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
			break;
		a->hdrs[i].name = name;
		a->hdrs[i].name_len = strlen(name);
		a->hdrs[i].value = val;
		a->hdrs[i].value_len = val ? size : 0;
		(*n)++;
	}
	return true;
}

/* One message's outcome, or NULL when out of memory. */
static sr_decoded *
sr_ahead_decode(sr_ahead *a, const rd_kafka_message_t *m)
{
	size_t		size = MAXALIGN(sizeof(sr_decoded));
	sr_decoded *d;
	sr_msg		msg;
	sr_job		job;
	sr_error	err;
	sr_decode_status st;
	rd_kafka_timestamp_type_t tstype;

	if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		const char *es = rd_kafka_message_errstr(m);
		size_t		len = strlen(es);

		d = malloc(size + len + 1);
		if (d == NULL)
			return NULL;
		memset(d, 0, sizeof(*d));
		d->kind = SR_DECODED_KAFKA_ERROR;
		d->size = size + len + 1;
		d->partition = m->partition;
		d->offset = m->offset;
		d->kafka_err = m->err;
		memcpy((char *) d + size, es, len + 1);
		d->kafka_errstr = (char *) d + size;
		return d;
	}

	msg.partition = m->partition;
	msg.offset = m->offset;
	msg.payload = m->payload;
	msg.len = m->payload != NULL ? m->len : 0;
	msg.key = m->key;
	msg.key_len = m->key != NULL ? m->key_len : 0;
	if (!sr_ahead_headers(a, m, &msg.nheaders))
		return NULL;
	msg.headers = a->hdrs;
	msg.ts_ms = rd_kafka_message_timestamp(m, &tstype);
	msg.has_ts = tstype != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && msg.ts_ms >= 0;

	st = sr_decode_event(a->dec, msg.payload, msg.len, msg.headers, msg.nheaders, &job, &err);
	if (st == SR_DECODE_JOB)
	{
		size_t		row_len = sr_job_row_size(&a->ctx, &job, msg.has_ts, msg.payload, msg.len);

		d = malloc(size + row_len);
		if (d == NULL)
			return NULL;
		memset(d, 0, sizeof(*d));
		if (row_len > 0)
		{
			sr_job_row_write((char *) d + size, &a->ctx, msg.partition, msg.offset, &job,
							 msg.has_ts, sr_job_row_timestamp(msg.ts_ms), msg.payload, msg.len);
			d->row = (char *) d + size;
			d->row_len = row_len;
		}
		size += row_len;
	}
	else if (st == SR_DECODE_ERROR)
	{
		size_t		raw = sr_ahead_raw_size(&msg);

		d = malloc(size + raw);
		if (d == NULL)
			return NULL;
		memset(d, 0, sizeof(*d));
		sr_ahead_copy_raw(&d->msg, &msg, (char *) d + size);
		d->err = err;
		size += raw;
	}
	else
	{
		d = malloc(size);
		if (d == NULL)
			return NULL;
		memset(d, 0, sizeof(*d));
	}
	d->kind = SR_DECODED_MESSAGE;
	d->size = size;
	d->partition = msg.partition;
	d->offset = msg.offset;
	d->msg_bytes = msg.len + msg.key_len;
	d->st = st;
	return d;
}

/* Queue outcomes for the main thread, waking it if the queue was empty. */
static void
sr_ahead_push(sr_ahead *a, sr_decoded *first, sr_decoded *last, size_t bytes)
{
	bool		was_empty;

	pthread_mutex_lock(&a->mu);
	was_empty = a->head == NULL;
	if (a->tail != NULL)
		a->tail->next = first;
	else
		a->head = first;
	a->tail = last;
	a->bytes += bytes;
	pthread_mutex_unlock(&a->mu);
	if (was_empty)
		sr_ahead_poke(a->wake_fd);
}

/* Take one event: decode a fetch's messages, pass anything else on. */
static bool
sr_ahead_take(sr_ahead *a, rd_kafka_event_t *ev)
{
	sr_decoded *first = NULL,
			   *last = NULL,
			   *d;
	size_t		bytes = 0;
	bool		ok = true;

	if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_FETCH)
	{
		const rd_kafka_message_t *m;

		while ((m = rd_kafka_event_message_next(ev)) != NULL)
		{
			if ((d = sr_ahead_decode(a, m)) == NULL)
			{
				ok = false;
				break;
			}
			if (last != NULL)
				last->next = d;
			else
				first = d;
			last = d;
			bytes += d->size;
		}
		rd_kafka_event_destroy(ev);
	}
	else if ((d = calloc(1, sizeof(sr_decoded))) != NULL)
	{
		d->kind = SR_DECODED_EVENT;
		d->size = sizeof(sr_decoded);
		d->partition = -1;
		d->ev = ev;
		first = last = d;
		bytes = d->size;
	}
	else
	{
		rd_kafka_event_destroy(ev);
		ok = false;
	}
	if (first != NULL)
		sr_ahead_push(a, first, last, bytes);
	return ok;
}

/* The thread: poll librdkafka while the queue has room, decode, hand over. */
static void *
sr_ahead_main(void *arg)
{
	sr_ahead   *a = arg;

	for (;;)
	{
		bool		full;
		struct pollfd fds[2];

		pthread_mutex_lock(&a->mu);
		if (a->stop)
		{
			pthread_mutex_unlock(&a->mu);
			break;
		}
		full = a->failed || a->bytes >= a->budget;
		a->want_room = full;
		sr_decoder_set_max_message_bytes(a->dec, a->max_message_bytes);
		pthread_mutex_unlock(&a->mu);

		if (!full)
		{
			rd_kafka_event_t *ev;

			pthread_mutex_lock(&a->take_mu);
			ev = rd_kafka_queue_poll(a->queue, 0);
			if (ev != NULL && !sr_ahead_take(a, ev))
			{
				pthread_mutex_lock(&a->mu);
				a->failed = true;
				pthread_mutex_unlock(&a->mu);
				sr_ahead_poke(a->wake_fd);
			}
			pthread_mutex_unlock(&a->take_mu);
			if (ev != NULL)
				continue;
		}

		fds[0].fd = a->ctl[0];
		fds[0].events = POLLIN;
		fds[1].fd = full ? -1 : a->kafka[0];
		fds[1].events = POLLIN;
		(void) poll(fds, 2, SR_AHEAD_IDLE_MS);
		sr_ahead_drain_pipe(a->ctl[0]);
		sr_ahead_drain_pipe(a->kafka[0]);
	}
	return NULL;
}

static void
sr_ahead_pipe(int fds[2])
{
	if (pipe(fds) != 0 || fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0 ||
		fcntl(fds[1], F_SETFL, O_NONBLOCK) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create a pipe for the relay worker's decode thread: %m")));
}

static char *
sr_ahead_strdup(const char *s)
{
	char	   *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	return d;
}

/*
 * Start the thread on the events consumer's queue.  librdkafka's wake-up
 * for that queue moves to the thread; the thread wakes the main thread
 * through wake_fd.  Signals are blocked while it is created.
 */
void
sr_ahead_start(rd_kafka_queue_t *queue, int wake_fd, const sr_stream_def *def)
{
	sigset_t	all,
				old;
	int			rc;

	if (sr_ah.running)
		elog(ERROR, "sentry_relay: the decode thread is already running");
	sr_ah.head = sr_ah.tail = NULL;
	sr_ah.bytes = 0;
	sr_ah.budget = Max((size_t) sr_queue_buffer_kb * 1024 / 4, 64 * 1024);
	sr_ah.max_message_bytes = (size_t) sr_max_message_size;
	sr_ah.want_room = sr_ah.stop = sr_ah.failed = false;
	sr_ah.in_barrier = false;
	sr_ah.queue = queue;
	sr_ah.wake_fd = wake_fd;
	sr_ah.ctx.stream = sr_ahead_strdup(def->name);
	sr_ah.ctx.topic = sr_ahead_strdup(def->topic);
	sr_ah.ctx.eventstream_type = sr_ahead_strdup(def->eventstream_type);
	sr_ah.ctx.keep_body = def->keep_body;
	if (sr_ah.dec == NULL && (sr_ah.dec = sr_decoder_create(sr_ah.max_message_bytes)) == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("out of memory creating a message decoder")));
	sr_ahead_pipe(sr_ah.ctl);
	sr_ahead_pipe(sr_ah.kafka);
	rd_kafka_queue_io_event_enable(queue, sr_ah.kafka[1], "1", 1);

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&sr_ah.thread, NULL, sr_ahead_main, &sr_ah);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
	{
		rd_kafka_queue_io_event_enable(queue, wake_fd, "1", 1);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not start the relay worker's decode thread: %s", strerror(rc))));
	}
	sr_ah.running = true;
}

/*
 * The next outcome in librdkafka's order, or NULL.  The caller owns it
 * (sr_decoded_free).  The thread ran out of memory: an error, once what it
 * queued before is served; the worker restarts and reads on from its
 * stored offsets.
 */
sr_decoded *
sr_ahead_next(void)
{
	sr_decoded *d;
	bool		failed;
	bool		room = false;

	pthread_mutex_lock(&sr_ah.mu);
	d = sr_ah.head;
	if (d != NULL)
	{
		sr_ah.head = d->next;
		if (sr_ah.head == NULL)
			sr_ah.tail = NULL;
		d->next = NULL;
		sr_ah.bytes -= d->size;
		if (sr_ah.want_room && sr_ah.bytes <= sr_ah.budget / 2)
		{
			sr_ah.want_room = false;
			room = true;
		}
	}
	failed = sr_ah.failed;
	if ((size_t) sr_max_message_size != sr_ah.max_message_bytes)
		sr_ah.max_message_bytes = (size_t) sr_max_message_size;
	pthread_mutex_unlock(&sr_ah.mu);
	if (room)
		sr_ahead_poke(sr_ah.ctl[1]);
	if (d == NULL && failed && sr_ah.running)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory in the relay worker's decode thread"),
				 errhint("The worker restarts and reads on from its stored offsets.")));
	return d;
}

/* Whether outcomes wait for the main thread. */
bool
sr_ahead_pending(void)
{
	bool		any;

	pthread_mutex_lock(&sr_ah.mu);
	any = sr_ah.head != NULL || sr_ah.failed;
	pthread_mutex_unlock(&sr_ah.mu);
	return any;
}

/*
 * Wait until the thread is between events and keep it there, before a
 * call that changes what librdkafka delivers for some partitions (seek,
 * pause, resume, assign, unassign).  sr_ahead_forget or
 * sr_ahead_forget_list ends it.  Nothing in between may throw.
 */
void
sr_ahead_barrier(void)
{
	if (!sr_ah.running || sr_ah.in_barrier)
		return;
	pthread_mutex_lock(&sr_ah.take_mu);
	sr_ah.in_barrier = true;
}

/* Drop queued messages of a partition (-1: of every partition). */
static void
sr_ahead_drop(int32 partition)
{
	sr_decoded **link = &sr_ah.head;
	sr_decoded *prev = NULL;

	pthread_mutex_lock(&sr_ah.mu);
	while (*link != NULL)
	{
		sr_decoded *d = *link;

		if (d->kind != SR_DECODED_EVENT && (partition < 0 || d->partition == partition))
		{
			*link = d->next;
			sr_ah.bytes -= d->size;
			free(d);
			continue;
		}
		prev = d;
		link = &d->next;
	}
	sr_ah.tail = prev;
	pthread_mutex_unlock(&sr_ah.mu);
}

static void
sr_ahead_end_barrier(void)
{
	if (sr_ah.in_barrier)
	{
		sr_ah.in_barrier = false;
		pthread_mutex_unlock(&sr_ah.take_mu);
	}
	sr_ahead_poke(sr_ah.ctl[1]);	/* it may have room again */
}

/*
 * End a barrier: drop what the thread queued for partition (-1: for every
 * partition), as librdkafka drops what it fetched before the call.
 */
void
sr_ahead_forget(int32 partition)
{
	if (!sr_ah.running)
		return;
	sr_ahead_drop(partition);
	sr_ahead_end_barrier();
}

/* End a barrier, dropping what was queued for each partition of parts. */
void
sr_ahead_forget_list(const rd_kafka_topic_partition_list_t *parts)
{
	if (!sr_ah.running)
		return;
	for (int i = 0; parts != NULL && i < parts->cnt; i++)
		sr_ahead_drop(parts->elems[i].partition);
	sr_ahead_end_barrier();
}

/* Free an outcome; an event passed through is destroyed with it. */
void
sr_decoded_free(sr_decoded *d)
{
	if (d->kind == SR_DECODED_EVENT && d->ev != NULL)
		rd_kafka_event_destroy(d->ev);
	free(d);
}

/*
 * Stop the thread.  What it queued stays for sr_ahead_next (the shutdown
 * serves the events among it); librdkafka's wake-up goes back to the main
 * thread's pipe.  Safe in an error exit, even inside a barrier.
 */
void
sr_ahead_stop(void)
{
	if (!sr_ah.running)
		return;
	if (sr_ah.in_barrier)
	{
		sr_ah.in_barrier = false;
		pthread_mutex_unlock(&sr_ah.take_mu);
	}
	pthread_mutex_lock(&sr_ah.mu);
	sr_ah.stop = true;
	pthread_mutex_unlock(&sr_ah.mu);
	sr_ahead_poke(sr_ah.ctl[1]);
	pthread_join(sr_ah.thread, NULL);
	sr_ah.running = false;
	rd_kafka_queue_io_event_enable(sr_ah.queue, sr_ah.wake_fd, "1", 1);
	close(sr_ah.ctl[0]);
	close(sr_ah.ctl[1]);
	close(sr_ah.kafka[0]);
	close(sr_ah.kafka[1]);
}

/* Free whatever is still queued, at an exit; the thread has stopped. */
void
sr_ahead_discard(void)
{
	sr_decoded *d;

	pthread_mutex_lock(&sr_ah.mu);
	while ((d = sr_ah.head) != NULL)
	{
		sr_ah.head = d->next;
		sr_decoded_free(d);
	}
	sr_ah.tail = NULL;
	sr_ah.bytes = 0;
	pthread_mutex_unlock(&sr_ah.mu);
}
