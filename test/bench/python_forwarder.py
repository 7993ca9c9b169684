#!/usr/bin/python3
"""python_forwarder.py - Sentry's post-process forwarder in Python, writing
its jobs into PostgreSQL: the relay benchmark's peer (relay_bench.sh).

What a Python engineer would ship to do the relay's job as a separate
process, with the algorithm of Sentry's original forwarder
(src/sentry/eventstream/kafka/{consumer,state,protocol}.py, 2018, in
../shared/seeds/000_f30ed4f1e19c5d3c.txt) and the decoding rules of Sentry's
current protocol.py and dispatch.py.  Instead of dispatching a Celery task
per message it inserts each job, in batches, into a table shaped like
sentry_relay.jobs.  Debian's python3-confluent-kafka and python3-psycopg2
only.

Threads (one process):

  main        the SynchronizedConsumer's consumer of the events topic, in
              the consumer group (--consumer-group).  consume() takes up to
              --consume-max messages at a time; each passes the gate (below)
              under the partition state lock, then is decoded outside it:
              the Kafka task headers when present (get_task_kwargs_for_
              message_from_headers), else, or on any header error, the body
              (get_task_kwargs_for_message).  A job becomes one line of
              COPY text in the current batch.
  commit log  a second consumer (a group of its own, '<group>:sync:<uuid>',
              rewound to the start of the commit log on assignment, as in
              the seed), reading the writer's commit log: the entry of each
              followed group (--synchronize-commit-group, repeatable; the
              remote offset is the minimum over them) sets the partition's
              remote offset.
  writer      takes finished batches from a queue (--pipeline deep, so the
              main thread decodes the next batch meanwhile): COPY ... FROM
              STDIN of the batch, COMMIT, then the batch's Kafka offsets,
              committed synchronously (at-least-once, as Sentry's forwarder:
              a crash between the two commits re-sends the batch).

The gate (state.py's SynchronizedPartitionStateManager): per partition a
local offset (the next to relay) and a remote one (the writer's commit);
UNKNOWN, LOCAL_BEHIND, SYNCHRONIZED, REMOTE_BEHIND, with state.py's
transitions.  A partition is paused unless LOCAL_BEHIND, resumed when the
remote offset moves past the local one.  A message at or past the remote
offset (a fetch that ran ahead of the pause, or a gap in the offsets) is not
relayed: the partition pauses, and on resume is seeked back to its local
offset (the seed raised MessageNotReady there instead).

Where this differs from Sentry's forwarder, the relay's deviations
(docs/decoding.md) are followed, so that the rows are the relay's: a message
Sentry would fail on, or a job its columns could not hold (an id that is
not an integer, a NUL), is counted as an error and skipped, not a crash;
hierarchical unmerges are skipped; a message that names no queue gets the
stream's default queue.

  python_forwarder.py --bootstrap-servers HOST:PORT --topic events \\
      --synchronize-commit-group snuba-consumers --dsn 'dbname=postgres' \\
      --table public.py_jobs --create-table [--until-count N] [...]

With --until-count N it exits once N messages (jobs, skips and errors) are
relayed and committed, and prints one JSON line of counts and timings on
stdout.  --ready-file PATH is written once the partitions are assigned and
the commit log has been read to its end.
"""
import argparse
import io
import json
import logging
import os
import queue
import re
import signal
import sys
import threading
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE
import psycopg2

log = logging.getLogger("python_forwarder")

# --- decoding: Sentry's protocol.py, with the relay's deviations ------------

# version_handlers' unsupported operations.  Version 2 also skips the
# hierarchical unmerges, which Sentry's producers write but protocol.py does
# not list (deviation 8: Sentry would raise on them).
SKIPPED = {
    1: frozenset(["delete", "delete_groups", "merge", "unmerge"]),
    2: frozenset(["start_delete_groups", "end_delete_groups", "start_merge", "end_merge",
                  "start_unmerge", "end_unmerge", "start_delete_tag", "end_delete_tag",
                  "exclude_groups", "tombstone_events", "replace_group",
                  "start_unmerge_hierarchical", "end_unmerge_hierarchical"]),
}
DEFAULT_QUEUES = {"error": "post_process_errors", "transaction": "post_process_transactions",
                  "generic": "post_process_issue_platform"}
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


class Invalid(Exception):
    """A message Sentry's forwarder would raise on, or a job the table
    cannot hold: counted as an error, not relayed."""


class Skip(Exception):
    """No job: a replacement, or an insert with skip_consume."""


def _is_int(v):
    return type(v) is int and INT64_MIN <= v <= INT64_MAX


def _reject_constant(name):
    raise ValueError(name)   # NaN, Infinity: not JSON, and jsonb refuses them


_BAD_JSONB = re.compile(r"\\u0000|\\ud[89a-f]", re.I)   # what jsonb refuses in a JSON text


def jsonb_text(value):
    """group_states as JSON text for a jsonb column, or Invalid."""
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise Invalid("group_states: %s" % e)
    if "\\u" in text and _BAD_JSONB.search(text):
        raise Invalid("group_states: jsonb cannot hold it")
    return text


def header_group_states(raw):
    """decode_optional_list_str: JSON text of a list, else None (Sentry logs
    and passes None; so does the relay for what jsonb cannot hold)."""
    if raw is None:
        return None
    text = raw.decode("utf-8")    # not UTF-8 raises: the body is read
    try:
        parsed = json.loads(text, parse_constant=_reject_constant)
    except Exception:
        return None
    if not isinstance(parsed, list):
        return None
    if "\\u" in text and _BAD_JSONB.search(text):
        return None
    return text


def from_headers(h):
    """get_task_kwargs_for_message_from_headers, as a tuple (project_id,
    group_id, event_id, primary_hash, is_new, is_regression, is_nge,
    group_states_json, occurrence_id, queue or None).  Raises Skip for no
    job, anything else for "read the body"."""
    version = int(h["version"])
    operation = h["operation"].decode("utf-8")
    if operation != "insert":
        if operation in SKIPPED[version]:     # KeyError for another version
            raise Skip()
        raise ValueError("unexpected operation %r" % operation)
    # int() of the bytes: Python's int() of the text, but ASCII digits only
    # (deviation 6); bool(int(...)) for the flags
    flags = (bool(int(h["skip_consume"])), bool(int(h["is_new"])), bool(int(h["is_regression"])),
             bool(int(h["is_new_group_environment"])))
    event_id = h["event_id"].decode("utf-8")
    project_id = int(h["project_id"])
    group_id = h.get("group_id")
    if group_id is not None:
        group_id = int(group_id)
    primary_hash = h.get("primary_hash")
    if primary_hash is not None:
        primary_hash = primary_hash.decode("utf-8")
    occurrence_id = h.get("occurrence_id")
    if occurrence_id is not None:
        occurrence_id = occurrence_id.decode("utf-8")
    queue_ = h.get("queue")
    if queue_ is not None:
        queue_ = queue_.decode("utf-8")
    elif "queue" in h:
        raise ValueError("queue header without a value")
    # deviations 1 and 5: 64-bit ids, no NUL in kept text; else the body
    if not (INT64_MIN <= project_id <= INT64_MAX) or (group_id is not None and not INT64_MIN <= group_id <= INT64_MAX):
        raise ValueError("id beyond 64 bits")
    for s in (event_id, primary_hash, occurrence_id, queue_):
        if s is not None and "\x00" in s:
            raise ValueError("NUL in a header")
    if flags[0]:
        raise Skip()
    gs = h.get("group_states")
    return (project_id, group_id, event_id, primary_hash, flags[1], flags[2], flags[3],
            header_group_states(gs) if gs is not None else None, occurrence_id, queue_)


def _insert(operation, event_data, task_state=None):
    """basic_protocol_handler's get_task_kwargs_for_insert."""
    if task_state and task_state.get("skip_consume", False):
        raise Skip()
    event_id = event_data["event_id"]
    project_id = event_data["project_id"]
    group_id = event_data["group_id"]
    primary_hash = event_data["primary_hash"]
    occurrence_id = event_data.get("occurrence_id")
    is_new = task_state["is_new"]
    is_regression = task_state["is_regression"]
    is_nge = task_state["is_new_group_environment"]
    group_states = task_state.get("group_states") if task_state else None
    queue_ = task_state.get("queue") if task_state else None
    # deviation 1: the columns' types; 3: queue a string or null; 5: no NUL
    if type(event_id) is not str or not _is_int(project_id) or (group_id is not None and not _is_int(group_id)):
        raise Invalid("id of the wrong type")
    for s in (primary_hash, occurrence_id, queue_):
        if s is not None and type(s) is not str:
            raise Invalid("text field of the wrong type")
    for s in (event_id, primary_hash, occurrence_id, queue_):
        if s is not None and "\x00" in s:
            raise Invalid("NUL in a kept string")
    # deviation 2: a flag is None or its Python truth value
    return (project_id, group_id, event_id, primary_hash,
            None if is_new is None else bool(is_new),
            None if is_regression is None else bool(is_regression),
            None if is_nge is None else bool(is_nge),
            None if group_states is None else jsonb_text(group_states), occurrence_id, queue_)


def from_body(value):
    """get_task_kwargs_for_message: json.loads, version, handler(*payload[1:])."""
    try:
        payload = json.loads(value)
        version = payload[0]
    except Exception as e:
        raise Invalid("payload: %s" % e)
    try:
        skipped = SKIPPED[int(version)]
    except (ValueError, KeyError, TypeError):
        raise Invalid("unexpected version %r" % (version,))
    try:
        operation = payload[1]
        if operation == "insert":
            return _insert(*payload[1:])
        if operation in skipped:
            raise Skip()
    except (Skip, Invalid):
        raise
    except Exception as e:
        raise Invalid("insert: %r" % e)
    raise Invalid("unexpected operation %r" % (operation,))


# --- COPY text ---------------------------------------------------------------

COLUMNS = ('stream, topic, partition, "offset", queue, eventstream_type, project_id, group_id, '
           'event_id, primary_hash, is_new, is_regression, is_new_group_environment, group_states, '
           'occurrence_id, cache_key, message_timestamp')
_NEEDS_ESC = re.compile(r"[\\\t\n\r]").search
_ESC = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_FLAG = {None: "\\N", True: "t", False: "f"}


def esc(s):
    if s is None:
        return "\\N"
    return s.translate(_ESC) if _NEEDS_ESC(s) else s


class Timestamps:
    """Kafka timestamps (ms) as timestamptz text, cached by second."""

    def __init__(self):
        self.sec = None
        self.text = None

    def __call__(self, ts):
        kind, ms = ts
        if kind == TIMESTAMP_NOT_AVAILABLE or ms < 0:
            return "\\N"
        sec, frac = divmod(ms, 1000)
        if sec != self.sec:
            self.sec = sec
            self.text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(sec))
        return "%s.%03d+00" % (self.text, frac)


# --- the partition state machine (state.py) ---------------------------------

UNKNOWN, LOCAL_BEHIND, SYNCHRONIZED, REMOTE_BEHIND = "UNKNOWN", "LOCAL_BEHIND", "SYNCHRONIZED", "REMOTE_BEHIND"
TRANSITIONS = {
    None: frozenset([UNKNOWN]),
    UNKNOWN: frozenset([LOCAL_BEHIND, REMOTE_BEHIND, SYNCHRONIZED]),
    REMOTE_BEHIND: frozenset([LOCAL_BEHIND, SYNCHRONIZED]),
    LOCAL_BEHIND: frozenset([SYNCHRONIZED, REMOTE_BEHIND]),
    SYNCHRONIZED: frozenset([LOCAL_BEHIND, REMOTE_BEHIND]),
}


class InvalidStateTransition(Exception):
    pass


class Part:
    __slots__ = ("topic", "partition", "state", "local", "remote", "remotes", "paused", "rewind")

    def __init__(self, topic, partition):
        self.topic, self.partition = topic, partition
        self.state = None
        self.local = self.remote = None
        self.remotes = {}          # followed group -> its committed offset
        self.paused = False        # we paused it
        self.rewind = False        # messages past `local` were delivered and dropped


class States:
    """SynchronizedPartitionStateManager, with the seed's callback (pause
    unless LOCAL_BEHIND) built in, and remote = min over the followed groups."""

    def __init__(self, consumer, groups, stats):
        self.consumer = consumer
        self.groups = frozenset(groups)
        self.parts = {}
        self.lock = threading.RLock()
        self.stats = stats

    def get(self, topic, partition):
        p = self.parts.get((topic, partition))
        if p is None:
            p = self.parts[(topic, partition)] = Part(topic, partition)
        return p

    @staticmethod
    def state_of(local, remote):
        if local is None or remote is None:
            return UNKNOWN
        if local < remote:
            return LOCAL_BEHIND
        if remote < local:
            return REMOTE_BEHIND
        return SYNCHRONIZED

    def _update(self, p, local, remote):
        if local is not None and p.local is not None and local < p.local:
            log.info("%s/%d: local offset moved backwards (%s -> %s)", p.topic, p.partition, p.local, local)
        if remote is not None and p.remote is not None and remote < p.remote:
            log.info("%s/%d: remote offset moved backwards (%s -> %s)", p.topic, p.partition, p.remote, remote)
        prev = p.state
        state = self.state_of(local, remote)
        if prev is not state and state not in TRANSITIONS[prev]:
            raise InvalidStateTransition("%s/%d: %s -> %s" % (p.topic, p.partition, prev, state))
        p.state, p.local, p.remote = state, local, remote
        if prev is not state:
            if state is REMOTE_BEHIND:
                log.warning("%s/%d: local offset %s exceeds remote offset %s", p.topic, p.partition, local, remote)
            self._on_change(p)

    def _on_change(self, p):
        if p.local is None:
            return          # not assigned yet: only the remote offset is known
        if p.state is LOCAL_BEHIND:
            if p.paused:
                if p.rewind:
                    # librdkafka resumes where the application's position is,
                    # past the dropped messages: go back to the local offset
                    self.consumer.seek(TopicPartition(p.topic, p.partition, p.local))
                    self.stats["seeks"] += 1
                    p.rewind = False
                self.consumer.resume([TopicPartition(p.topic, p.partition)])
                self.stats["resumes"] += 1
                p.paused = False
        elif not p.paused:
            self.consumer.pause([TopicPartition(p.topic, p.partition)])
            self.stats["pauses"] += 1
            p.paused = True

    def set_local(self, topic, partition, offset):
        with self.lock:
            p = self.get(topic, partition)
            self._update(p, offset, p.remote)

    def set_remote(self, topic, partition, group, offset):
        with self.lock:
            p = self.get(topic, partition)
            p.remotes[group] = offset
            remote = min(p.remotes.values()) if len(p.remotes) == len(self.groups) else None
            if remote != p.remote:
                self._update(p, p.local, remote)

    def forget(self, topic, partition):
        with self.lock:
            p = self.parts.get((topic, partition))
            if p is not None:
                # keep the remote offsets (the commit log is read once); drop
                # the local side, as a fresh assignment will set it again
                q = Part(topic, partition)
                q.remotes, q.remote = p.remotes, p.remote
                q.state = UNKNOWN
                self.parts[(topic, partition)] = q

    def gate(self, msgs, accepted):
        """validate_local_message and set_local_offset for a list of
        messages, under the lock: the relayable ones go to `accepted`.
        Returns the number dropped (ahead of the gate, or already relayed)."""
        dropped = 0
        with self.lock:
            parts = self.parts
            for m in msgs:
                err = m.error()
                if err is not None:
                    if err.fatal():
                        raise KafkaException(err)
                    if err.code() != KafkaError._PARTITION_EOF:
                        log.warning("consumer error: %s", err)   # librdkafka retries
                    continue
                o = m.offset()
                p = parts.get((m.topic(), m.partition()))
                if p is None or p.local is None or o < p.local:
                    dropped += 1          # not ours (revoked), or a re-delivery
                    continue
                if p.state is not LOCAL_BEHIND or o >= p.remote:
                    # ahead of the gate: a fetch that ran past the pause, or
                    # (LOCAL_BEHIND) a gap in the offsets.  The first such
                    # message is the next one the partition holds.
                    dropped += 1
                    if not p.rewind:
                        p.rewind = True
                        if o > p.local:
                            self._update(p, o, p.remote)
                        elif not p.paused:
                            self._on_change(p)
                    continue
                accepted.append(m)
                self._update(p, o + 1, p.remote)
        return dropped


# --- the commit log consumer -------------------------------------------------

def take(consumer, n, timeout):
    """Up to n messages: what is queued, else the first to arrive within
    timeout and what is queued behind it.  (consume(n, timeout) itself
    waits for n messages or the whole timeout.)"""
    msgs = consumer.consume(n, 0)
    if not msgs:
        msgs = consumer.consume(1, timeout)
        if msgs and n > 1:
            msgs += consumer.consume(n - 1, 0)
    return msgs


def commit_data(m):
    """get_commit_data: (group, topic, partition, offset).  The value is the
    current JSON format {"offset": N, ...} or the legacy integer text."""
    topic, partition, group = m.key().decode("utf-8").split(":", 2)
    raw = m.value()
    value = json.loads(raw)
    offset = value["offset"] if isinstance(value, dict) else value
    if type(offset) is not int:
        raise ValueError("offset %r" % (offset,))
    return group, topic, int(partition), offset


class CommitLogConsumer(threading.Thread):
    def __init__(self, args, kafka_opts, states, stop):
        super().__init__(name="commit-log", daemon=True)
        self.args, self.states, self.stop = args, states, stop
        self.caught_up = threading.Event()
        self.error = None
        self.positions = {}
        self.high = None
        conf = {"bootstrap.servers": args.bootstrap_servers,
                # unique to this process: it must get every partition of the commit log
                "group.id": "%s:sync:%s" % (args.consumer_group, uuid.uuid1().hex),
                "enable.auto.commit": False, "enable.auto.offset.store": False,
                "enable.partition.eof": False, "auto.offset.reset": "error"}
        conf.update(kafka_opts)
        self.consumer = Consumer(conf)

    def _on_assign(self, consumer, assignment):
        # from the beginning: a comprehensive view of the followed groups
        consumer.assign([TopicPartition(i.topic, i.partition, self.positions.get((i.topic, i.partition),
                                                                                   OFFSET_BEGINNING))
                         for i in assignment])
        if self.high is None:
            self.high = {}
            for i in assignment:
                lo, hi = consumer.get_watermark_offsets(TopicPartition(i.topic, i.partition), timeout=10)
                self.high[(i.topic, i.partition)] = hi
            self._check_caught_up()

    def _check_caught_up(self):
        if self.high is not None and not self.caught_up.is_set() and all(
                self.positions.get(k, 0) >= hi for k, hi in self.high.items()):
            self.caught_up.set()

    def run(self):
        try:
            self._run()
        except BaseException as e:      # noqa: the main thread reports it
            self.error = e
            log.exception("commit log consumer failed")
        finally:
            try:
                self.consumer.close()
            except Exception:
                pass

    def _run(self):
        topic, groups = self.args.topic, self.states.groups
        self.consumer.subscribe([self.args.commit_log_topic], on_assign=self._on_assign)
        while not self.stop.is_set():
            msgs = take(self.consumer, 1000, 1.0)     # the seed's poll(1)
            updates = {}
            for m in msgs:
                if m.error() is not None:
                    if m.error().retriable() and not m.error().fatal():
                        log.warning("commit log: %s", m.error())
                        continue
                    raise KafkaException(m.error())
                self.positions[(m.topic(), m.partition())] = m.offset() + 1
                try:
                    group, t, partition, offset = commit_data(m)
                except Exception as e:
                    log.warning("commit log entry at %d: %s", m.offset(), e)
                    continue
                if t == topic and group in groups:
                    updates[(partition, group)] = offset      # the latest entry wins
            for (partition, group), offset in updates.items():
                self.states.set_remote(topic, partition, group, offset)
            self._check_caught_up()


# --- the writer --------------------------------------------------------------

class Writer(threading.Thread):
    """COPY a batch, COMMIT, then commit its Kafka offsets."""

    def __init__(self, args, consumer, stats, depth):
        super().__init__(name="writer", daemon=True)
        self.args, self.consumer, self.stats = args, consumer, stats
        self.q = queue.Queue(maxsize=max(1, depth))
        self.error = None
        self.conn = psycopg2.connect(args.dsn, application_name="python_forwarder")
        with self.conn.cursor() as cur:
            if args.synchronous_commit:
                cur.execute("SET synchronous_commit = %s", (args.synchronous_commit,))
        self.conn.commit()
        self.copy_sql = "COPY %s (%s) FROM STDIN" % (args.table, COLUMNS)

    def run(self):
        try:
            while True:
                item = self.q.get()
                try:
                    if item is None:
                        return
                    self.write(*item)
                finally:
                    self.q.task_done()
        except BaseException as e:      # noqa: the main thread reports it
            self.error = e
            log.exception("writer failed")
            # keep draining so that the main thread never blocks on put()
            while True:
                if self.q.get() is None:
                    self.q.task_done()
                    return
                self.q.task_done()

    def write(self, lines, offsets, n):
        st = self.stats
        if lines:
            try:
                data = ("\n".join(lines) + "\n").encode("utf-8")
            except UnicodeEncodeError:
                data = None
            with self.conn.cursor() as cur:
                try:
                    if data is None:
                        raise ValueError("not UTF-8")
                    cur.copy_expert(self.copy_sql, io.BytesIO(data))
                    self.conn.commit()
                except (psycopg2.DataError, psycopg2.IntegrityError, ValueError) as e:
                    # a row the table refuses: find it, row by row in savepoints
                    self.conn.rollback()
                    log.warning("batch refused (%s): retrying row by row", str(e).strip().splitlines()[0])
                    bad = 0
                    for line in lines:
                        cur.execute("SAVEPOINT r")
                        try:
                            cur.copy_expert(self.copy_sql, io.BytesIO((line + "\n").encode("utf-8")))
                            cur.execute("RELEASE SAVEPOINT r")
                        except (psycopg2.DataError, psycopg2.IntegrityError, UnicodeEncodeError):
                            cur.execute("ROLLBACK TO SAVEPOINT r")
                            bad += 1
                    self.conn.commit()
                    st["refused"] += bad
            st["db_commits"] += 1
            st["t_last_db_commit"] = time.time()
            t = os.times()
            st["cpu_s_last_commit"] = round(t.user + t.system, 3)
        if offsets:
            try:
                self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                                     asynchronous=False)
                st["kafka_commits"] += 1
            except KafkaException as e:
                # the rows are in: a later batch's commit covers these offsets
                # (at worst a restart sends this batch again)
                log.warning("Kafka offset commit failed: %s", e)
                st["kafka_commit_failures"] += 1
        st["committed"] += n


# --- the forwarder -----------------------------------------------------------

def create_table(dsn, table):
    """CREATE TABLE ... (LIKE sentry_relay.jobs INCLUDING ALL), with the
    queue's storage parameters (LIKE copies none)."""
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS %s (LIKE sentry_relay.jobs INCLUDING ALL)" % table)
        cur.execute("SELECT array_to_string(reloptions, ', ') FROM pg_class WHERE oid = 'sentry_relay.jobs'::regclass")
        opts = cur.fetchone()[0]
        if opts:
            cur.execute("ALTER TABLE %s SET (%s)" % (table, opts))
    conn.close()


class Forwarder:
    def __init__(self, args, kafka_opts):
        self.args = args
        self.stop = threading.Event()
        self.stats = {"messages": 0, "jobs": 0, "skipped": 0, "errors": 0, "dropped": 0,
                      "pauses": 0, "resumes": 0, "seeks": 0, "batches": 0, "db_commits": 0,
                      "kafka_commits": 0, "kafka_commit_failures": 0, "committed": 0, "refused": 0,
                      "t_last_db_commit": None, "cpu_s_ready": None, "cpu_s_last_commit": None}
        conf = {"bootstrap.servers": args.bootstrap_servers, "group.id": args.consumer_group,
                "enable.auto.commit": False, "enable.auto.offset.store": False,
                "enable.partition.eof": False,
                # as the seed: a start position nobody chose is an error
                "auto.offset.reset": "error"}
        conf.update(kafka_opts)
        self.consumer = Consumer(conf)
        self.states = States(self.consumer, args.synchronize_commit_group, self.stats)
        self.commit_log = CommitLogConsumer(args, kafka_opts, self.states, self.stop)
        self.writer = Writer(args, self.consumer, self.stats, args.pipeline)
        self.assigned = threading.Event()
        self.lines = []
        self.offsets = {}
        self.batch_msgs = 0
        self.deadline = None
        self.prefix = "%s\t%s\t" % (esc(args.stream), esc(args.topic))
        self.suffix_type = "\t%s\t" % esc(args.eventstream_type)
        self.default_queue = args.default_queue or DEFAULT_QUEUES.get(args.eventstream_type, "post_process_errors")
        self.ts = Timestamps()
        self.use_headers = not args.no_headers

    # rebalance callbacks, from consume() on the main thread
    def on_assign(self, consumer, assignment):
        offsets = {(i.topic, i.partition): None for i in assignment}
        unknown = [TopicPartition(t, p) for (t, p) in offsets]
        if unknown:
            for i in consumer.committed(unknown, timeout=30):
                if i.offset >= 0:
                    offsets[(i.topic, i.partition)] = i.offset
                else:
                    lo, hi = consumer.get_watermark_offsets(TopicPartition(i.topic, i.partition), timeout=30)
                    if self.args.initial_offset_reset == "earliest":
                        offsets[(i.topic, i.partition)] = lo
                    elif self.args.initial_offset_reset == "latest":
                        offsets[(i.topic, i.partition)] = hi
                    else:
                        raise RuntimeError("%s/%d: no committed offset" % (i.topic, i.partition))
        consumer.assign([TopicPartition(t, p, o) for (t, p), o in offsets.items()])
        for (t, p), o in offsets.items():
            # pauses the partition unless its remote offset is already past o
            self.states.set_local(t, p, o)
        log.info("assigned %d partitions", len(offsets))
        self.assigned.set()

    def on_revoke(self, consumer, revoked):
        log.info("revoked %d partitions: flushing", len(revoked))
        self.flush()
        self.writer.q.join()
        for i in revoked:
            self.states.forget(i.topic, i.partition)
        self.assigned.clear()

    def flush(self):
        if not self.batch_msgs:
            return
        self.stats["batches"] += 1
        self.writer.q.put((self.lines, self.offsets, self.batch_msgs))
        self.lines, self.offsets, self.batch_msgs, self.deadline = [], {}, 0, None

    def check_threads(self):
        if self.writer.error is not None:
            raise RuntimeError("writer failed: %r" % self.writer.error)
        if self.commit_log.error is not None or not self.commit_log.is_alive():
            raise RuntimeError("commit log consumer unexpectedly exit: %r" % self.commit_log.error)

    def add(self, msgs):
        """Decode the relayed messages into the batch."""
        st = self.stats
        lines = self.lines
        offsets = self.offsets
        prefix, suffix_type, default_queue, ts = self.prefix, self.suffix_type, self.default_queue, self.ts
        use_headers = self.use_headers
        jobs = skipped = errors = 0
        for m in msgs:
            job = None
            try:
                hdrs = m.headers() if use_headers else None
                if hdrs:
                    try:
                        job = from_headers(dict(hdrs))
                    except Skip:
                        raise
                    except Exception:
                        job = None            # dispatch.py: read the body instead
                if job is None:
                    job = from_body(m.value())
            except Skip:
                skipped += 1
            except Invalid as e:
                errors += 1
                if errors <= 3 and log.isEnabledFor(logging.DEBUG):
                    log.debug("%s/%d@%d: %s", m.topic(), m.partition(), m.offset(), e)
            else:
                project_id, group_id, event_id, primary_hash, is_new, is_reg, is_nge, gs, occ, q = job
                eid = esc(event_id)
                lines.append("%s%d\t%d\t%s%s%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\te:%s:%d\t%s" % (
                    prefix, m.partition(), m.offset(), esc(default_queue if q is None else q), suffix_type, project_id,
                    "\\N" if group_id is None else group_id, eid, esc(primary_hash),
                    _FLAG[is_new], _FLAG[is_reg], _FLAG[is_nge], esc(gs), esc(occ), eid, project_id,
                    ts(m.timestamp())))
                jobs += 1
            offsets[(m.topic(), m.partition())] = m.offset() + 1
        st["jobs"] += jobs
        st["skipped"] += skipped
        st["errors"] += errors
        st["messages"] += len(msgs)
        self.batch_msgs += len(msgs)

    def run(self):
        a = self.args
        st = self.stats
        t_start = time.time()
        self.writer.start()
        self.commit_log.start()
        self.consumer.subscribe([a.topic], on_assign=self.on_assign, on_revoke=self.on_revoke)
        ready = False
        t_ready = t_first = None
        end = None if a.max_seconds is None else time.monotonic() + a.max_seconds
        accepted = []
        idle = a.idle_timeout_ms / 1000.0
        bt = a.batch_timeout_ms / 1000.0
        linger = a.linger_ms / 1000.0
        while not self.stop.is_set():
            self.check_threads()
            now = time.monotonic()
            if end is not None and now >= end:
                log.warning("--max-seconds reached")
                break
            if self.batch_msgs and (self.batch_msgs >= a.batch_size or now >= self.deadline):
                self.flush()
            if a.until_count is not None and st["messages"] >= a.until_count:
                break
            if not ready and self.assigned.is_set() and self.commit_log.caught_up.is_set():
                ready = True
                t_ready = time.time()
                t = os.times()
                st["cpu_s_ready"] = round(t.user + t.system, 3)
                log.info("ready: assigned, commit log read to its end")
                if a.ready_file:
                    with open(a.ready_file + ".tmp", "w") as f:
                        f.write("%.6f\n" % t_ready)
                    os.replace(a.ready_file + ".tmp", a.ready_file)
            want = min(a.consume_max, a.batch_size - self.batch_msgs)
            if self.batch_msgs:
                # fill the batch while messages keep coming; a gap of
                # --linger-ms, or the batch's age, sends it
                msgs = take(self.consumer, want, min(linger, max(0.0, self.deadline - now)))
                if not msgs:
                    self.flush()
                    continue
            else:
                msgs = take(self.consumer, want, idle)
                if not msgs:
                    continue
            accepted.clear()
            st["dropped"] += self.states.gate(msgs, accepted)
            if not accepted:
                continue
            if t_first is None:
                t_first = time.time()
            if not self.batch_msgs:
                self.deadline = time.monotonic() + bt
            self.add(accepted)
        self.flush()
        self.writer.q.put(None)
        self.writer.join()
        self.stop.set()
        self.check_writer_only()
        self.commit_log.join(timeout=5)
        self.consumer.close()
        cpu = os.times()
        out = dict(st)
        # rows the table refused (found row by row) are errors, not jobs
        out["jobs"] -= st["refused"]
        out["errors"] += st["refused"]
        out.update({"t_start": t_start, "t_ready": t_ready, "t_first_message": t_first,
                    "t_end": time.time(), "cpu_s": round(cpu.user + cpu.system, 3),
                    "batch_size": a.batch_size, "batch_timeout_ms": a.batch_timeout_ms,
                    "pipeline": a.pipeline, "consume_max": a.consume_max, "linger_ms": a.linger_ms})
        return out

    def check_writer_only(self):
        if self.writer.error is not None:
            raise RuntimeError("writer failed: %r" % self.writer.error)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--bootstrap-servers", required=True)
    ap.add_argument("--topic", required=True, help="the events topic")
    ap.add_argument("--commit-log-topic", default="snuba-commit-log")
    ap.add_argument("--synchronize-commit-group", action="append", required=True, metavar="GROUP",
                    help="a followed writer group (repeatable: the remote offset is the minimum)")
    ap.add_argument("--consumer-group", default="post-process-forwarder")
    ap.add_argument("--initial-offset-reset", choices=("earliest", "latest", "error"), default="latest")
    ap.add_argument("--dsn", required=True, help="libpq connection string")
    ap.add_argument("--table", required=True, help="target table, shaped like sentry_relay.jobs")
    ap.add_argument("--create-table", action="store_true",
                    help="CREATE TABLE IF NOT EXISTS the target LIKE sentry_relay.jobs INCLUDING ALL, "
                         "with the queue's storage parameters")
    ap.add_argument("--stream", default=None, help="the rows' stream column (default: the topic)")
    ap.add_argument("--eventstream-type", default="error", choices=sorted(DEFAULT_QUEUES))
    ap.add_argument("--default-queue", default=None, help="queue of jobs whose message names none "
                    "(default: by --eventstream-type, as the relay)")
    ap.add_argument("--no-headers", action="store_true", help="always decode the body")
    ap.add_argument("--batch-size", type=int, default=5000, help="most messages per transaction (5000)")
    ap.add_argument("--batch-timeout-ms", type=float, default=100.0,
                    help="longest time filling one batch, from its first message (100)")
    ap.add_argument("--linger-ms", type=float, default=5.0,
                    help="a batch is sent when no message came for this long (5)")
    ap.add_argument("--consume-max", type=int, default=1000, help="most messages per consume() (1000)")
    ap.add_argument("--pipeline", type=int, default=1,
                    help="finished batches queued for the writer thread while the next fills (1)")
    ap.add_argument("--idle-timeout-ms", type=float, default=100.0,
                    help="consume() wait with an empty batch (100: the seed's poll(0.1))")
    ap.add_argument("--synchronous-commit", default=None,
                    help="the writer's synchronous_commit (default: the server's; off gives up "
                         "at-least-once on a PostgreSQL crash, since Kafka offsets follow the commit)")
    ap.add_argument("--kafka-opt", action="append", default=[], metavar="K=V",
                    help="a librdkafka property for both consumers (repeatable)")
    ap.add_argument("--until-count", type=int, default=None,
                    help="exit once N messages are relayed and committed; print a JSON line")
    ap.add_argument("--max-seconds", type=float, default=None, help="exit after this long, whatever the count")
    ap.add_argument("--ready-file", default=None,
                    help="written (epoch seconds) once assigned and the commit log is read to its end")
    ap.add_argument("--log-level", default="INFO")
    a = ap.parse_args()
    logging.basicConfig(level=a.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s python_forwarder[%(process)d] %(threadName)s %(levelname)s %(message)s")
    if a.stream is None:
        a.stream = a.topic
    kafka_opts = {}
    for kv in a.kafka_opt:
        k, sep, v = kv.partition("=")
        if not sep:
            ap.error("--kafka-opt %r: want NAME=VALUE" % kv)
        kafka_opts[k] = v
    if a.create_table:
        create_table(a.dsn, a.table)
    fw = Forwarder(a, kafka_opts)
    signal.signal(signal.SIGTERM, lambda *_: fw.stop.set())
    signal.signal(signal.SIGINT, lambda *_: fw.stop.set())
    out = fw.run()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
