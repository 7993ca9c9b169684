/*
 * fetch_waker.c - a thread of the relay worker that wakes librdkafka's
 * fetcher, so that the worker itself never waits for the wake-up.
 *
 * The wake-up is a ListOffsets request for a partition that is behind its
 * high watermark (why one is needed: events.c, sr_kick_fetcher).  That
 * request is a round trip, and the broker answers it only after the fetch in
 * flight on the same connection: 6 to 13 ms each on the benchmark's mock
 * cluster.  Made from the worker's main thread, the wake-ups stopped it for
 * a fifth of a drain.  Here the main thread only hands a partition over and
 * goes on; the thread makes the request and keeps the answer (the high
 * watermark) for the main thread to pick up.
 *
 * The thread calls librdkafka and libc only, never PostgreSQL, and runs with
 * every signal blocked, so that PostgreSQL's handlers run on the main thread
 * alone.
 */
#include "postgres.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "fetch_waker.h"

/* How long one request may take, and how long a stop waits for it. */
#define SR_WAKER_QUERY_MS 5000

typedef struct sr_waker
{
	pthread_t	thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool		running;		/* the thread exists (main thread only) */
	/* below: under mu */
	rd_kafka_t *rk;
	char		topic[256];
	int32		want;			/* partition to wake for, or -1 */
	bool		busy;			/* a request is in flight */
	bool		stop;
	int32		got_partition;	/* last answer, or -1 */
	int64		got_high;
} sr_waker;

static sr_waker sr_wk = {.running = false};

/* The thread: wait for a partition, send the request, keep the answer. */
static void *
sr_waker_main(void *arg)
{
	sr_waker   *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;)
	{
		int32		partition;
		int64_t		lo,
					hi;
		rd_kafka_resp_err_t err;

		while (!w->stop && w->want < 0)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->stop)
			break;
		partition = w->want;
		w->want = -1;
		w->busy = true;
		pthread_mutex_unlock(&w->mu);

		err = rd_kafka_query_watermark_offsets(w->rk, w->topic, partition, &lo, &hi,
											   SR_WAKER_QUERY_MS);

		pthread_mutex_lock(&w->mu);
		w->busy = false;
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR && hi >= 0)
		{
			w->got_partition = partition;
			w->got_high = hi;
		}
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/*
 * Start the thread for rk's topic.  Signals are blocked while it is created,
 * so that it starts with all of them blocked.
 */
void
sr_waker_start(rd_kafka_t *rk, const char *topic)
{
	sigset_t	all,
				old;
	int			rc;

	if (sr_wk.running)
		elog(ERROR, "sentry_relay: the fetch waker is already running");
	pthread_mutex_init(&sr_wk.mu, NULL);
	pthread_cond_init(&sr_wk.cv, NULL);
	sr_wk.rk = rk;
	strlcpy(sr_wk.topic, topic, sizeof(sr_wk.topic));
	sr_wk.want = -1;
	sr_wk.busy = false;
	sr_wk.stop = false;
	sr_wk.got_partition = -1;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&sr_wk.thread, NULL, sr_waker_main, &sr_wk);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not start the relay worker's fetch thread: %s", strerror(rc))));
	sr_wk.running = true;
}

/* Ask for a wake-up for partition; false if one is still in flight. */
bool
sr_waker_request(int32 partition)
{
	bool		taken = false;

	if (!sr_wk.running)
		return false;
	pthread_mutex_lock(&sr_wk.mu);
	if (!sr_wk.busy && sr_wk.want < 0)
	{
		sr_wk.want = partition;
		taken = true;
		pthread_cond_signal(&sr_wk.cv);
	}
	pthread_mutex_unlock(&sr_wk.mu);
	return taken;
}

/* The last answer, once: its partition and high watermark. */
bool
sr_waker_result(int32 *partition, int64 *high)
{
	bool		got = false;

	if (!sr_wk.running)
		return false;
	pthread_mutex_lock(&sr_wk.mu);
	if (sr_wk.got_partition >= 0)
	{
		*partition = sr_wk.got_partition;
		*high = sr_wk.got_high;
		sr_wk.got_partition = -1;
		got = true;
	}
	pthread_mutex_unlock(&sr_wk.mu);
	return got;
}

/*
 * Stop the thread, waiting up to timeout_ms for a request in flight.  True
 * when it has ended, so that the Kafka handle may be destroyed; false when
 * it is still inside librdkafka (a broker that does not answer), and the
 * handle must be left to the process's exit.  A stop that already waited
 * (shutdown, then the exit callback) does not wait again.
 */
bool
sr_waker_stop(int timeout_ms)
{
	struct timespec deadline;

	if (!sr_wk.running)
		return true;
	pthread_mutex_lock(&sr_wk.mu);
	if (sr_wk.stop)
		timeout_ms = 0;
	sr_wk.stop = true;
	pthread_cond_broadcast(&sr_wk.cv);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L)
	{
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	while (sr_wk.busy)
		if (pthread_cond_timedwait(&sr_wk.cv, &sr_wk.mu, &deadline) != 0)
			break;
	if (sr_wk.busy)
	{
		pthread_mutex_unlock(&sr_wk.mu);
		return false;
	}
	pthread_mutex_unlock(&sr_wk.mu);
	pthread_join(sr_wk.thread, NULL);
	sr_wk.running = false;
	return true;
}
