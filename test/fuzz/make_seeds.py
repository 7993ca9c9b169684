#!/usr/bin/python3
"""make_seeds.py - write the seed corpora of the decoder fuzzers.

Each seed uses the fuzzers' input layout (see fuzz_common.h):
  event:      header block, then the body
  commit_log: key-length byte (255 = null) and key, header block, value
A header block is a count byte, then per header: name length, name, value
length (255 = null), value.  Run from anywhere; writes corpus/{event,commit_log}.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
EID = "0123456789abcdef0123456789abcdef"


def header_block(headers):
    out = bytes([len(headers)])
    for name, value in headers:
        name = name.encode()
        out += bytes([len(name)]) + name
        if value is None:
            out += b"\xff"
        else:
            value = value.encode() if isinstance(value, str) else value
            out += bytes([len(value)]) + value
    return out


def event_seed(body, headers=()):
    body = body.encode() if isinstance(body, str) else body
    return header_block(list(headers)) + body


def commit_seed(key, value, headers=()):
    k = b"\xff" if key is None else bytes([len(key)]) + key.encode()
    return k + header_block(list(headers)) + value.encode()


event_data = {
    "event_id": EID, "project_id": 1, "group_id": 2, "group_ids": [2],
    "organization_id": 3, "message": "boom", "platform": "python",
    "datetime": "2024-02-13T20:52:46.831390Z", "primary_hash": "49f68a5c8493ec2c0bf489821c21fc3b",
    "retention_days": 90,
    "data": {"exception": {"values": [{"type": "ValueError", "stacktrace": {"frames": [
        {"filename": "a.py", "lineno": 1, "vars": {"x": [1, {"y": None}]}}]}}]},
        "tags": [["level", "error"]], "contexts": {"os": {"name": "Linux"}}},
}
task_state = {"is_new": True, "is_regression": False, "is_new_group_environment": True,
              "queue": "post_process_errors", "skip_consume": False,
              "group_states": [{"id": 2, "is_new": True, "is_regression": False,
                                "is_new_group_environment": True}]}
full_headers = [("Received-Timestamp", "1707857566.83"), ("version", "2"), ("operation", "insert"),
                ("event_id", EID), ("project_id", "1"), ("group_id", "2"),
                ("primary_hash", "49f68a5c8493ec2c0bf489821c21fc3b"), ("is_new", "1"),
                ("is_regression", "0"), ("is_new_group_environment", "1"), ("skip_consume", "0"),
                ("queue", "post_process_errors"),
                ("group_states", json.dumps(task_state["group_states"]))]

events = {
    "v2_insert": event_seed(json.dumps([2, "insert", event_data, task_state])),
    "v2_insert_headers": event_seed(json.dumps([2, "insert", event_data, task_state]), full_headers),
    "v2_headers_garbage_body": event_seed("garbage", full_headers),
    "v2_bad_header": event_seed(json.dumps([2, "insert", event_data, task_state]),
                                full_headers[:7] + [("is_new", "x")]),
    "v1_insert": event_seed(json.dumps([1, "insert", event_data,
                                        {"is_new": False, "is_sample": False, "is_regression": False,
                                         "is_new_group_environment": False}])),
    "v2_issue_platform": event_seed(json.dumps([2, "insert", dict(event_data, group_id=None,
                                                                    occurrence_id="abc",
                                                                    occurrence_data={"id": "abc"}),
                                                dict(task_state, queue="post_process_issue_platform")])),
    "v2_skip": event_seed(json.dumps([2, "insert", event_data, dict(task_state, skip_consume=True)])),
    "v2_tombstone": event_seed(json.dumps([2, "tombstone_events", {"project_id": 1, "event_ids": [EID]}])),
    "v2_end_unmerge": event_seed(json.dumps([2, "end_unmerge", {"project_id": 1}])),
    "v2_exclude_groups": event_seed(json.dumps([2, "exclude_groups", {"project_id": 1, "group_ids": [1]}])),
    "v1_delete": event_seed(json.dumps([1, "delete", {}])),
    "v2_replacement_headers": event_seed("", [("version", "2"), ("operation", "start_merge")]),
    "bad_version": event_seed(json.dumps([3, "insert", {}, {}])),
    "bad_op": event_seed(json.dumps([2, "explode", {}])),
    "deep": event_seed("[" * 100),
    "escapes": event_seed('[2,"insert",{"event_id":"' + EID + '","project_id":1},'
                          '{"is_new":true,"is_regression":false,"queue":"\\ud83d\\ude00\\u0000"}]'),
    "bignum": event_seed('[2,"insert",{"event_id":"' + EID + '","project_id":99999999999999999999},'
                         '{"is_new":true,"is_regression":false}]'),
}
commits = {
    "json": commit_seed("events:0:snuba-consumers",
                        '{"offset": 12346, "orig_message_ts": 1707857566.83139, "received_p99": 1707857569.83139}'),
    "json_null_p99": commit_seed("events:3:snuba:consumers", '{"offset": 1, "orig_message_ts": 1, "received_p99": null}'),
    "legacy": commit_seed("events:1:snuba-consumers", "12346",
                          [("orig_message_ts", "2021-09-20T12:34:56.789000Z")]),
    "legacy_plain": commit_seed("transactions:0:transactions_group", "0"),
    "null_key": commit_seed(None, "1"),
    "bad_key": commit_seed("events-0", "1"),
    "negative": commit_seed("events:0:g", "-5"),
}

for sub, seeds in (("event", events), ("commit_log", commits)):
    d = os.path.join(HERE, "corpus", sub)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, "seed_" + name), "wb") as f:
            f.write(data)
print("seeds written")
