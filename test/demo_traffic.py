#!/usr/bin/python3
"""demo_traffic.py - write sample Sentry traffic for the demo as produce_file
lines of test/kafka_mock (TOPIC PARTITION KEYHEX VALUEHEX [H=HEX ...]).

  demo_traffic.py events OUT PARTITIONS PER_PARTITION
      realistic eventstream messages: v2 inserts (half of them with the
      modern task headers), a few replacement operations, one skip_consume
      insert and one undecodable message per partition.
  demo_traffic.py commit OUT TOPIC PARTITIONS OFFSET GROUP
      commit-log entries (JSON format) that move GROUP to OFFSET on every
      partition of TOPIC.
Standard library only.
"""
import json
import random
import sys
import time


def hx(b):
    return b.hex() if b else '""'


def line(topic, partition, key, value, headers=()):
    parts = [topic, str(partition), hx(key) if key is not None else "-", hx(value)]
    parts += ["%s=%s" % (n, hx(v.encode())) for n, v in headers]
    return " ".join(parts)


def event(rng, partition, i):
    eid = "%032x" % rng.getrandbits(128)
    project = rng.choice([1, 2, 42])
    group = rng.randint(1, 500)
    is_new = rng.random() < 0.1
    data = {
        "event_id": eid, "level": "error", "platform": "python",
        "exception": {"values": [{
            "type": rng.choice(["ValueError", "KeyError", "ZeroDivisionError"]),
            "value": "something went wrong in request %d" % i,
            "stacktrace": {"frames": [
                {"filename": "app/views.py", "function": "handle", "lineno": 10 + k,
                 "in_app": True, "context_line": "    return compute(x)",
                 "vars": {"x": str(k), "request_id": "%08x" % rng.getrandbits(32)}}
                for k in range(rng.randint(3, 12))]},
        }]},
        "tags": [["environment", "production"], ["release", "web@1.4.%d" % rng.randint(0, 9)],
                 ["server_name", "web-%d" % rng.randint(1, 8)]],
        "contexts": {"os": {"name": "Linux"}, "runtime": {"name": "CPython", "version": "3.11.7"}},
        "user": {"id": str(rng.randint(1, 10000))},
    }
    event_data = {
        "event_id": eid, "project_id": project, "group_id": group, "group_ids": [group],
        "organization_id": 1, "message": data["exception"]["values"][0]["value"],
        "platform": "python", "primary_hash": "%032x" % rng.getrandbits(128),
        "datetime": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
        "retention_days": 90, "data": data,
    }
    task_state = {
        "is_new": is_new, "is_regression": False, "is_new_group_environment": is_new,
        "queue": "post_process_errors", "skip_consume": False,
        "group_states": [{"id": group, "is_new": is_new, "is_regression": False,
                          "is_new_group_environment": is_new}],
    }
    value = json.dumps([2, "insert", event_data, task_state]).encode()
    headers = ()
    if i % 2 == 0:
        headers = (("Received-Timestamp", "%.6f" % time.time()), ("version", "2"),
                   ("operation", "insert"), ("event_id", eid), ("project_id", str(project)),
                   ("group_id", str(group)), ("primary_hash", event_data["primary_hash"]),
                   ("is_new", "1" if is_new else "0"), ("is_regression", "0"),
                   ("is_new_group_environment", "1" if is_new else "0"),
                   ("skip_consume", "0"), ("queue", "post_process_errors"),
                   ("group_states", json.dumps(task_state["group_states"])))
    return line("events", partition, str(project).encode(), value, headers)


def main():
    if sys.argv[1] == "events":
        out, parts, per = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        rng = random.Random(1234)
        with open(out, "w") as f:
            for p in range(parts):
                for i in range(per):
                    if i == per // 2:
                        f.write(line("events", p, None, b'[2, "end_merge", {"project_id": 1}]') + "\n")
                    elif i == per // 3:
                        f.write(line("events", p, None, b'{"this is": "not an event"') + "\n")
                    elif i == per - 1:
                        f.write(line("events", p, None, json.dumps(
                            [2, "insert", {"event_id": "%032x" % i, "project_id": 1},
                             {"is_new": False, "is_regression": False, "skip_consume": True}]).encode()) + "\n")
                    else:
                        f.write(event(rng, p, i) + "\n")
    else:
        out, topic, parts, offset, group = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
        with open(out, "w") as f:
            for p in range(parts):
                key = ("%s:%d:%s" % (topic, p, group)).encode()
                now = time.time()
                value = json.dumps({"offset": offset, "orig_message_ts": now - 0.5,
                                    "received_p99": now - 0.2}).encode()
                f.write(line("snuba-commit-log", 0, key, value) + "\n")


if __name__ == "__main__":
    main()
