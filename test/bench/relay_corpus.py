#!/usr/bin/python3
"""relay_corpus.py - deterministic Sentry traffic for the relay benchmark
(test/bench/relay_bench.sh), written as produce_file lines of
test/kafka_mock/sr_kafka_mock: "TOPIC PARTITION KEYHEX VALUEHEX [H=HEX ...]".

  relay_corpus.py events OUT --topic T --partitions P --count N [options]
      N events-topic messages, round-robin over P partitions:
        - v2 "insert" messages shaped like Sentry's eventstream (event_data with
          a "data" body that follows a real error event: exception with stack
          frames, breadcrumbs, tags, contexts, request, user, sdk, ...);
        - --replacements (default 0.05) of v2 replacement operations
          (start_delete_groups, end_merge, ...), which give no job;
        - --bad (default 0.001) of undecodable messages (bad JSON, unknown
          operation or version, missing or invalid event_id), which are
          dead-lettered.
      --size realistic (default): message sizes around a median of 2 KB,
          log-normal, with a tail (0.5% of inserts) up to 1 MB;
      --size BYTES: every insert about BYTES long (at least ~820 bytes);
      --size min: the smallest inserts (~280 bytes, empty data);
      --big N:BYTES: the last message of each of the first N partitions is an
          insert of about BYTES (for the memory scenario);
      --headers: add the modern task headers (operation and version always;
          event_id, project_id, is_new, ... for inserts), so the relay decodes
          without parsing the body; bad messages never get headers;
      --seed S (default 5): the same arguments always give the same bytes.
      Also writes OUT.json: counts per kind and per partition, the expected
      number of jobs, and size statistics.
  relay_corpus.py commit OUT --topic T --partitions P --group G --offsets SPEC
          [--commit-topic snuba-commit-log] [--ts EPOCH]
      commit-log entries (current JSON format) that move writer group G to an
      offset on every partition of T.  SPEC is one integer for all
      partitions, or a comma-separated list with one per partition.

Standard library only.  About 100,000 realistic messages per 3-4 seconds.
"""
import argparse
import json
import random
import sys

BASE_TS = 1707857566.0          # 2024-02-13T20:52:46Z, fixed for determinism

EXC_TYPES = [("ValueError", "builtins"), ("KeyError", "builtins"),
             ("ZeroDivisionError", "builtins"), ("OperationalError", "django.db.utils"),
             ("ConnectionError", "requests.exceptions"), ("TimeoutError", "builtins"),
             ("IntegrityError", "psycopg2.errors"), ("AttributeError", "builtins")]
MODULES = ["app.views", "app.models", "app.tasks", "app.api.endpoints", "django.core.handlers.base",
           "django.views.generic.base", "rest_framework.views", "celery.app.trace",
           "sentry_sdk.integrations.django", "requests.sessions", "urllib3.connectionpool"]
FUNCS = ["handle", "dispatch", "get", "post", "compute_totals", "_get_response", "inner",
         "process_request", "execute", "run", "__call__", "send", "urlopen", "save", "clean"]
REPLACEMENT_OPS = ["start_delete_groups", "end_delete_groups", "start_merge", "end_merge",
                   "start_unmerge", "end_unmerge", "start_delete_tag", "end_delete_tag",
                   "tombstone_events", "replace_group", "exclude_groups",
                   "start_unmerge_hierarchical", "end_unmerge_hierarchical"]


def dumps(o):
    return json.dumps(o, separators=(", ", ": "))


class Pools:
    """Pre-serialized fragments (stack frames, breadcrumbs), so that building
    a message is mostly string joining."""

    def __init__(self, rng):
        self.frames = [self.frame(rng, i) for i in range(600)]
        self.crumbs = [self.crumb(rng, i) for i in range(600)]
        self.frame_mean = sum(map(len, self.frames)) / len(self.frames)
        self.crumb_mean = sum(map(len, self.crumbs)) / len(self.crumbs)
        self.blob = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789 _-/.:")
                            for _ in range(65536))

    @staticmethod
    def frame(rng, i):
        mod = rng.choice(MODULES)
        path = mod.replace(".", "/") + ".py"
        in_app = mod.startswith("app.")
        f = {"function": rng.choice(FUNCS), "module": mod, "filename": path,
             "abs_path": "/srv/app/" + path if in_app else "/usr/lib/python3.11/site-packages/" + path,
             "lineno": rng.randint(1, 900), "in_app": in_app,
             "pre_context": ["    def %s(self, request):" % rng.choice(FUNCS), "        try:"],
             "context_line": "            return self.%s(request, *args, **kwargs)" % rng.choice(FUNCS),
             "post_context": ["        except Exception:", "            raise"]}
        if rng.random() < 0.5:
            f["vars"] = {"self": "<%s object at 0x7f%010x>" % (rng.choice(FUNCS), rng.getrandbits(40)),
                         "request": "<WSGIRequest: GET '/api/0/items/%d/'>" % rng.randint(1, 99999),
                         "args": "[]", "kwargs": {"pk": str(rng.randint(1, 10**6))}}
        return dumps(f)

    @staticmethod
    def crumb(rng, i):
        kind = rng.random()
        if kind < 0.4:
            c = {"timestamp": BASE_TS - rng.random() * 60, "type": "default", "category": "query",
                 "message": "SELECT \"app_item\".\"id\", \"app_item\".\"name\" FROM \"app_item\" WHERE \"app_item\".\"id\" = %s" % rng.randint(1, 99999),
                 "level": "info", "data": {"db.system": "postgresql"}}
        elif kind < 0.8:
            c = {"timestamp": BASE_TS - rng.random() * 60, "type": "http", "category": "httplib",
                 "data": {"url": "https://api.example.com/v%d/things/%d" % (rng.randint(1, 3), rng.randint(1, 9999)),
                          "method": rng.choice(["GET", "POST"]), "status_code": rng.choice([200, 201, 404, 500]),
                          "reason": "OK"}, "level": "info"}
        else:
            c = {"timestamp": BASE_TS - rng.random() * 60, "type": "default", "category": "logging",
                 "message": "worker %d processed batch %d" % (rng.randint(1, 64), rng.randint(1, 10**6)),
                 "level": rng.choice(["info", "warning"]), "logger": "app.tasks"}
        return dumps(c)


def event_body(rng, pools, eid, i, target):
    """The "data" of an error event, serialized, about `target` bytes long
    (at least the fixed part, ~1.2 KB, unless target is tiny)."""
    et, emod = rng.choice(EXC_TYPES)
    value = "something went wrong handling request %d" % i
    ts = BASE_TS + i / 1000.0
    head = {
        "event_id": eid, "level": "error", "version": "7", "type": "error",
        "logger": "", "platform": "python", "timestamp": ts, "received": ts + 0.02,
        "environment": rng.choice(["production", "staging"]),
        "release": "web@1.4.%d" % rng.randint(0, 30),
        "transaction": "/api/0/items/{item_id}/", "culprit": "app.views in handle",
        "title": "%s: %s" % (et, value),
        "metadata": {"type": et, "value": value, "filename": "app/views.py", "function": "handle"},
        "tags": [["environment", "production"], ["level", "error"],
                 ["release", "web@1.4.%d" % rng.randint(0, 30)],
                 ["server_name", "web-%d" % rng.randint(1, 16)],
                 ["browser.name", "Chrome"], ["url", "https://example.com/items/%d" % rng.randint(1, 9999)]],
        "user": {"id": str(rng.randint(1, 100000)), "ip_address": "10.%d.%d.%d" % (
            rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))},
        "sdk": {"name": "sentry.python.django", "version": "1.40.%d" % rng.randint(0, 6),
                "integrations": ["django", "celery", "redis", "logging"]},
        "grouping_config": {"id": "newstyle:2023-01-11", "enhancements": "eJybzDRxY3J-bm5-nqWVqZmRgaWBqbmRsbmZqYmRhYGpsaG-sYGZkaWJkbG5mZmxhZmpvUmRibmxgZGl"},
    }
    if target < 900:
        # the smallest realistic body: no stack trace, no breadcrumbs
        small = {"event_id": eid, "level": "error", "platform": "python", "timestamp": ts,
                 "exception": {"values": [{"type": et, "value": value}]}}
        return dumps(small)
    if target < 1700:
        # a lean event: no SDK details, grouping config or metadata
        for k in ("sdk", "grouping_config", "metadata", "title", "transaction"):
            del head[k]
        head["tags"] = head["tags"][:3]
    if target >= 2200:
        head["contexts"] = {
            "os": {"name": "Linux", "version": "6.1.0", "type": "os"},
            "runtime": {"name": "CPython", "version": "3.11.7", "type": "runtime"},
            "trace": {"trace_id": "%032x" % rng.getrandbits(128), "span_id": "%016x" % rng.getrandbits(64),
                      "op": "http.server", "status": "internal_error", "type": "trace"}}
        head["request"] = {"url": "https://example.com/api/0/items/%d/" % rng.randint(1, 99999),
                           "method": "GET", "headers": [["Accept", "application/json"],
                                                        ["User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"]]}
    fixed = dumps(head)
    room = target - len(fixed) - 250
    nframes = max(1, min(60, int(room * 0.6 / pools.frame_mean)))
    room -= int(nframes * (pools.frame_mean + 1))
    ncrumbs = max(0, min(100, int(room / pools.crumb_mean)))
    room -= int(ncrumbs * (pools.crumb_mean + 1))
    start = rng.randrange(len(pools.frames))
    frames = [pools.frames[(start + k) % len(pools.frames)] for k in range(nframes)]
    start = rng.randrange(len(pools.crumbs))
    crumbs = [pools.crumbs[(start + k) % len(pools.crumbs)] for k in range(ncrumbs)]
    exc = ('"exception": {"values": [{"type": "%s", "value": "%s", "module": "%s", '
           '"mechanism": {"type": "django", "handled": false}, "stacktrace": {"frames": [%s]}}]}, '
           '"breadcrumbs": {"values": [%s]}' % (et, value, emod, ", ".join(frames), ", ".join(crumbs)))
    extra = ""
    if room > 100:
        # large events carry big payloads: request bodies, extra, vars
        reps, rest = divmod(room, len(pools.blob))
        off = rng.randrange(len(pools.blob) - rest) if rest < len(pools.blob) else 0
        extra = ', "extra": {"payload": "%s"}' % (pools.blob * reps + pools.blob[off:off + rest])
    return fixed[:-1] + ", " + exc + extra + "}"


def size_for(rng, args):
    if args.size == "min":
        return 0
    if args.size != "realistic":
        return int(args.size)
    if rng.random() < 0.005:
        # the tail: log-uniform between 16 KB and 1 MB (Kafka's default
        # message.max.bytes is 1,000,000, envelope included)
        return int(min(990000, 16384 * (990000 / 16384) ** rng.random()))
    return int(min(990000, max(700, rng.lognormvariate(7.63, 0.5))))   # median ~2 KB


def min_insert_message(rng, i, headers):
    """The smallest v2 insert Sentry writes (~280 bytes): empty data."""
    eid = "%032x" % rng.getrandbits(128)
    project = 1 + i % 7
    group = 1 + rng.getrandbits(20)
    msg = ('[2, "insert", {"event_id": "%s", "project_id": %d, "group_id": %d, '
           '"primary_hash": "%032x", "datetime": "2024-02-13T20:52:46.831390Z", "data": {}}, '
           '{"is_new": false, "is_regression": false, "is_new_group_environment": false}]'
           % (eid, project, group, rng.getrandbits(128)))
    hdrs = None
    if headers:
        hdrs = [("version", "2"), ("operation", "insert"), ("event_id", eid),
                ("project_id", str(project)), ("group_id", str(group)), ("is_new", "0"),
                ("is_regression", "0"), ("is_new_group_environment", "0"), ("skip_consume", "0"),
                ("Received-Timestamp", "%.6f" % (BASE_TS + i / 1000.0))]
    return str(project).encode(), msg.encode(), hdrs


def insert_message(rng, pools, i, target, headers):
    if target <= 0:
        return min_insert_message(rng, i, headers)
    eid = "%032x" % rng.getrandbits(128)
    project = rng.choice((1, 2, 3, 42, 1001, 1002, 50321))
    group = None if rng.random() < 0.02 else rng.randint(1, 2000000)
    is_new = rng.random() < 0.08
    is_reg = (not is_new) and rng.random() < 0.02
    is_nge = is_new or rng.random() < 0.05
    ph = "%032x" % rng.getrandbits(128)
    dt = "2024-02-13T20:52:%02d.%06dZ" % ((i // 1000) % 60, (i % 1000) * 1000)
    gs = None if group is None else [{"id": group, "is_new": is_new, "is_regression": is_reg,
                                      "is_new_group_environment": is_nge}]
    # the envelope is ~600 bytes; the body gets the rest
    body = event_body(rng, pools, eid, i, target - 600)
    msg = ('[2, "insert", {"event_id": "%s", "project_id": %d, "group_id": %s, "group_ids": %s, '
           '"organization_id": %d, "message": "something went wrong handling request %d", '
           '"platform": "python", "datetime": "%s", "primary_hash": "%s", "retention_days": 90, '
           '"data": %s}, {"is_new": %s, "is_regression": %s, "is_new_group_environment": %s, '
           '"queue": "post_process_errors", "skip_consume": false, "group_states": %s}]'
           % (eid, project, "null" if group is None else group, "[]" if group is None else "[%d]" % group,
              project * 7 + 1, i, dt, ph, body, js(is_new), js(is_reg), js(is_nge),
              "null" if gs is None else dumps(gs)))
    hdrs = None
    if headers:
        hdrs = [("Received-Timestamp", "%.6f" % (BASE_TS + i / 1000.0)), ("version", "2"),
                ("operation", "insert"), ("event_id", eid), ("project_id", str(project)),
                ("is_new", b01(is_new)), ("is_regression", b01(is_reg)),
                ("is_new_group_environment", b01(is_nge)), ("skip_consume", "0"),
                ("primary_hash", ph), ("queue", "post_process_errors")]
        if group is not None:
            hdrs += [("group_id", str(group)), ("group_states", dumps(gs))]
    return str(project).encode(), msg.encode(), hdrs


def js(b):
    return "true" if b else "false"


def b01(b):
    return "1" if b else "0"


def replacement_message(rng, i, headers):
    op = REPLACEMENT_OPS[i % len(REPLACEMENT_OPS)]
    project = rng.choice((1, 2, 3, 42))
    payload = {"transaction_id": "%032x" % rng.getrandbits(128), "project_id": project,
               "datetime": "2024-02-13T20:52:46.831390Z"}
    if "merge" in op:
        payload.update(previous_group_ids=[rng.randint(1, 10**6) for _ in range(3)],
                       new_group_id=rng.randint(1, 10**6))
    elif "delete_groups" in op or op in ("exclude_groups", "tombstone_events"):
        payload["group_ids"] = [rng.randint(1, 10**6) for _ in range(2)]
    elif "tag" in op:
        payload.update(tag="browser.name", group_ids=[rng.randint(1, 10**6)])
    msg = dumps([2, op, payload]).encode()
    hdrs = [("version", "2"), ("operation", op)] if headers else None
    return str(project).encode(), msg, hdrs


BAD = [b'[2, "insert", {"event_id": "9cdc4c32dff14fbbb012b0aa9e9081', b'{"this is": "not an event"}',
       b'[2, "frobnicate", {"project_id": 1}]', b'[3, "insert", {}, {}]',
       b'[2, "insert", {"project_id": 1, "group_id": 5}, {"is_new": false}]',
       b'[2, "insert", {"event_id": "not-hex", "project_id": 1}, {"is_new": false, "is_regression": false}]']


def hx(b):
    return b.hex() if b else '""'


def cmd_events(args):
    rng = random.Random(args.seed)
    pools = Pools(random.Random(args.seed + 1))
    big_parts, big_size = 0, 0
    if args.big:
        big_parts, big_size = (int(x) for x in args.big.split(":"))
    per_part = [0] * args.partitions
    part_bytes = [0] * args.partitions
    counts = {"insert": 0, "replacement": 0, "bad": 0, "big": 0}
    sizes = []
    total_bytes = 0
    # the positions of the big messages: the last message of partitions 0..big_parts-1
    big_at = set(i for i in range(max(0, args.count - args.partitions), args.count)
                 if i % args.partitions < big_parts)
    topic = args.topic
    with open(args.out, "w") as f:
        w = f.write
        for i in range(args.count):
            p = i % args.partitions
            r = rng.random()
            if i in big_at:
                key, val, hdrs = insert_message(rng, pools, i, big_size, args.headers)
                kind = "insert"
                counts["big"] += 1
            elif r < args.bad:
                key, val, hdrs = None, BAD[i % len(BAD)], None
                kind = "bad"
            elif r < args.bad + args.replacements:
                key, val, hdrs = replacement_message(rng, i, args.headers)
                kind = "replacement"
            else:
                key, val, hdrs = insert_message(rng, pools, i, size_for(rng, args), args.headers)
                kind = "insert"
            counts[kind] += 1
            per_part[p] += 1
            part_bytes[p] += len(val)
            total_bytes += len(val)
            if kind == "insert":
                sizes.append(len(val))
            line = "%s %d %s %s" % (topic, p, hx(key) if key is not None else "-", hx(val))
            if hdrs:
                line += " " + " ".join("%s=%s" % (n, v.encode().hex()) for n, v in hdrs)
            w(line + "\n")
    sizes.sort()
    pct = (lambda q: sizes[min(len(sizes) - 1, int(q * len(sizes)))] if sizes else 0)
    summary = {"topic": topic, "partitions": args.partitions, "messages": args.count,
               "headers": args.headers, "seed": args.seed, "size": args.size,
               "jobs": counts["insert"], "replacements": counts["replacement"], "bad": counts["bad"],
               "big": counts["big"], "per_partition": per_part, "bytes": total_bytes,
               "max_partition_bytes": max(part_bytes),
               "insert_size": {"median": pct(0.5), "p90": pct(0.9), "p99": pct(0.99),
                               "p999": pct(0.999), "max": sizes[-1] if sizes else 0,
                               "mean": int(sum(sizes) / len(sizes)) if sizes else 0}}
    with open(args.out + ".json", "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps({k: summary[k] for k in ("messages", "jobs", "replacements", "bad", "bytes",
                                               "insert_size")}))


def cmd_commit(args):
    spec = args.offsets.split(",")
    if len(spec) == 1:
        spec = spec * args.partitions
    if len(spec) != args.partitions:
        sys.exit("--offsets: need 1 or %d values" % args.partitions)
    ts = args.ts if args.ts is not None else BASE_TS
    with open(args.out, "w") as f:
        for p in range(args.partitions):
            key = ("%s:%d:%s" % (args.topic, p, args.group)).encode()
            value = json.dumps({"offset": int(spec[p]), "orig_message_ts": ts - 0.5,
                                "received_p99": ts - 0.2}).encode()
            f.write("%s 0 %s %s\n" % (args.commit_topic, key.hex(), value.hex()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("events")
    e.add_argument("out")
    e.add_argument("--topic", required=True)
    e.add_argument("--partitions", type=int, required=True)
    e.add_argument("--count", type=int, required=True)
    e.add_argument("--size", default="realistic")
    e.add_argument("--headers", action="store_true")
    e.add_argument("--replacements", type=float, default=0.05)
    e.add_argument("--bad", type=float, default=0.001)
    e.add_argument("--big", default="")
    e.add_argument("--seed", type=int, default=5)
    c = sub.add_parser("commit")
    c.add_argument("out")
    c.add_argument("--topic", required=True)
    c.add_argument("--partitions", type=int, required=True)
    c.add_argument("--group", required=True)
    c.add_argument("--offsets", required=True)
    c.add_argument("--commit-topic", default="snuba-commit-log")
    c.add_argument("--ts", type=float)
    args = ap.parse_args()
    if args.cmd == "events":
        cmd_events(args)
    else:
        cmd_commit(args)


if __name__ == "__main__":
    main()
