#!/usr/bin/python3
"""job_worker.py - an example job worker for sentry_relay's queue.

It LISTENs on the `sentry_relay_jobs` channel, claims batches of jobs with
sentry_relay.claim_jobs(), hands each job to a handler, then completes the
batch with sentry_relay.complete_jobs(ids, attempts) or reports each failure
with sentry_relay.fail_job(id, error, attempt => attempts).  The `attempts`
value that claim_jobs returns is the lease token: a completion or failure
from a lease that expired and was claimed again is ignored by the server.

Run it as a login role that is a member of sentry_relay_worker:

    CREATE ROLE jobs LOGIN IN ROLE sentry_relay_worker;

    /usr/bin/python3 examples/job_worker.py --dsn 'dbname=sentry user=jobs'
    /usr/bin/python3 examples/job_worker.py --dsn ... --queues post_process_errors \\
        --batch 50 --lease '2 minutes' --handler mypackage.tasks:post_process

The default handler prints one line per job on stdout.  --handler MODULE:FUNC
plugs in your own (MODULE must be importable, e.g. through PYTHONPATH): it is
called with the job as a dict of the columns of sentry_relay.jobs, and it
fails the job by raising.  --fail-every N makes every
Nth job fail, to try retries.  --max-jobs N and --idle-exit SECONDS make the
worker exit after N jobs, or after that long without jobs (for tests).

Delivery is at least once: a job whose handler ran but whose completion was
lost (crash, lost connection) is claimed again when its lease ends.  Keep the
lease longer than a batch takes.  SIGTERM or SIGINT stops the worker after
the current batch; a second signal stops it at once.  Needs psycopg2 (Debian:
python3-psycopg2) and the standard library only.
"""
import argparse
import importlib
import logging
import os
import random
import select
import signal
import sys
import time

import psycopg2
import psycopg2.extras

CHANNEL = "sentry_relay_jobs"
CLAIM = "SELECT * FROM sentry_relay.claim_jobs(%s, %s::interval, %s::text[])"
COMPLETE = "SELECT sentry_relay.complete_jobs(%s::bigint[], %s::int[])"
FAIL = ("SELECT sentry_relay.fail_job(%s, %s, retry_in => %s * interval '1 second', "
        "attempt => %s)")
log = logging.getLogger("job_worker")


def print_job(job):
    """The default handler: a one-line summary of the job on stdout."""
    print("job id=%(id)s attempt=%(attempts)s stream=%(stream)s queue=%(queue)s "
          "partition=%(partition)s offset=%(offset)s project=%(project_id)s "
          "group=%(group_id)s event=%(event_id)s" % job, flush=True)


def one_line(error):
    return " ".join(str(error).split())


def load_handler(spec):
    """'package.module:function' -> the function."""
    module, _, name = spec.partition(":")
    if not name:
        raise SystemExit("--handler must be MODULE:FUNCTION, not %r" % spec)
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise SystemExit("--handler %s: %s" % (spec, e))


class Worker:
    def __init__(self, args, handler):
        self.args = args
        self.handler = handler
        self.queues = args.queues.split(",") if args.queues else None
        self.conn = None
        self.stopping = False
        self.seen = 0                   # jobs handed to the handler
        self.completed = 0
        self.failed = 0
        # signals wake the select() through this pipe
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)

    def on_signal(self, signum, _frame):
        if self.stopping:
            raise SystemExit(128 + signum)          # second signal: now
        log.info("%s: stopping after the current batch", signal.Signals(signum).name)
        self.stopping = True

    def connect(self):
        """Connect and LISTEN, retrying with capped exponential backoff."""
        delay = 0.5
        while not self.stopping:
            conn = None
            try:
                conn = psycopg2.connect(self.args.dsn, application_name="sentry_relay_job_worker",
                                        connect_timeout=10)
                conn.autocommit = True      # each statement is its own short transaction
                with conn.cursor() as cur:
                    cur.execute("LISTEN " + CHANNEL)
                self.conn = conn
                log.info("connected, listening on %s", CHANNEL)
                return True
            except psycopg2.OperationalError as e:
                if conn is not None:
                    conn.close()
                log.warning("connect failed: %s; retrying in %.1f s", one_line(e), delay)
                self.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, 30.0)
        return False

    def disconnect(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg2.Error:
                pass
            self.conn = None

    def sleep(self, seconds):
        """Sleep, but wake early on a signal."""
        select.select([self.wake_r], [], [], max(seconds, 0))
        self.drain_wakeups()

    def drain_wakeups(self):
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def wait(self, timeout):
        """Wait for a notification, a signal, or the timeout (the poll fallback)."""
        self.conn.poll()
        if not self.conn.notifies:
            select.select([self.conn, self.wake_r], [], [], timeout)
            self.drain_wakeups()
            self.conn.poll()

    def claim(self):
        n = self.args.batch
        if self.args.max_jobs:
            n = min(n, self.args.max_jobs - self.seen)
        # forget wake-ups from before this claim: it sees their jobs
        del self.conn.notifies[:]
        with self.conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(CLAIM, (n, self.args.lease, self.queues))
            return cur.fetchall()

    def process(self, jobs):
        """Run the handler on each job, fail the failures, complete the rest."""
        ids, attempts = [], []
        for job in jobs:
            self.seen += 1
            try:
                if self.args.fail_every and self.seen % self.args.fail_every == 0:
                    raise RuntimeError("simulated failure (--fail-every %d)" % self.args.fail_every)
                self.handler(job)
            except Exception as e:  # a handler error fails this job only
                error = "%s: %s" % (type(e).__name__, e)
                with self.conn.cursor() as cur:
                    cur.execute(FAIL, (job["id"], error, self.args.retry_in, job["attempts"]))
                    recorded = cur.fetchone()[0]
                self.failed += 1
                log.warning("failed job id=%s attempt=%s: %s%s", job["id"], job["attempts"], error,
                            "" if recorded else " (lease lost, not recorded)")
                continue
            ids.append(job["id"])
            attempts.append(job["attempts"])
        if ids:
            with self.conn.cursor() as cur:
                cur.execute(COMPLETE, (ids, attempts))
                done = cur.fetchone()[0]
            self.completed += done
            if done < len(ids):
                log.warning("%d of %d completions refused: their leases had expired",
                            len(ids) - done, len(ids))

    def run(self):
        last_work = time.monotonic()
        while not self.stopping:
            if self.args.max_jobs and self.seen >= self.args.max_jobs:
                log.info("reached --max-jobs %d", self.args.max_jobs)
                break
            if self.conn is None and not self.connect():
                break
            try:
                jobs = self.claim()
                log.debug("claimed %d jobs", len(jobs))
                if jobs:
                    self.process(jobs)
                    last_work = time.monotonic()
                    continue                        # drain the backlog before waiting
                timeout = self.args.poll
                if self.args.idle_exit is not None:
                    idle_left = self.args.idle_exit - (time.monotonic() - last_work)
                    if idle_left <= 0:
                        log.info("idle for %.1f s, exiting", self.args.idle_exit)
                        break
                    timeout = min(timeout, idle_left)
                self.wait(timeout)
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as e:
                # jobs claimed on the lost connection come back when their lease ends
                log.warning("connection lost: %s", one_line(e))
                self.disconnect()
                self.sleep(random.uniform(0.5, 1.5))   # no tight loop if it keeps failing
            except psycopg2.Error as e:
                # anything else (privileges, a broken function) will not heal by retrying
                log.error("database error, exiting: %s", one_line(e))
                self.disconnect()
                return 1
        self.disconnect()
        log.info("%d jobs: %d completed, %d failed", self.seen, self.completed, self.failed)
        return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dsn", default="", help="libpq connection string (default: PG* variables)")
    p.add_argument("--queues", help="comma-separated queue names (default: all queues)")
    p.add_argument("--batch", type=int, default=10, help="jobs per claim (default 10)")
    p.add_argument("--lease", default="5 minutes", help="lease per claim (default '5 minutes')")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between claims when idle")
    p.add_argument("--handler", help="MODULE:FUNCTION called with each job (default: print it)")
    p.add_argument("--fail-every", type=int, metavar="N", help="fail every Nth job (simulation)")
    p.add_argument("--retry-in", type=float, metavar="SECONDS",
                   help="retry failed jobs after this long (default: the server's backoff)")
    p.add_argument("--max-jobs", type=int, metavar="N", help="exit after N jobs")
    p.add_argument("--idle-exit", type=float, metavar="SECONDS", help="exit after this long idle")
    p.add_argument("--verbose", "-v", action="store_true")
    args = p.parse_args()
    if args.batch < 1 or (args.max_jobs is not None and args.max_jobs < 1) \
            or (args.fail_every is not None and args.fail_every < 1):
        p.error("--batch, --max-jobs and --fail-every must be positive")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s job_worker[%(process)d] %(levelname)s %(message)s")
    handler = load_handler(args.handler) if args.handler else print_job
    sys.exit(Worker(args, handler).run())


if __name__ == "__main__":
    main()
