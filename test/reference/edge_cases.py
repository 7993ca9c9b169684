"""edge_cases.py - hand-written messages at the edges of Sentry's rules and of
docs/decoding.md, with the outcome each must have.

Used twice: test_sentry_reference.py checks the reference decoder against the
expectations, and differential.py appends every case to the inputs the C
decoder and the reference are compared on (test/t/076).

cases() returns a list of Case(label, value, headers, expect, fields): value
is bytes or None, headers a list of (name, value-or-None), expect 'job',
'skip' or 'error', and fields a dict of job fields the job must have (only
those listed are checked).  Labels starting with "python:" or "reading:" mark
cases where the expectation follows Python's actual behaviour or our reading
of an open point of docs/decoding.md rather than its literal text; the README
of test/reference says which.
"""
import collections
import json

Case = collections.namedtuple("Case", "label value headers expect fields")

EID = "9cdc4c32dff14fbbb012b0aa9e908126"
HASH = "061cf02b26374d108694d6643a7a2f4e"
INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)


class Raw:
    """JSON text inserted verbatim."""

    def __init__(self, text):
        self.text = text


class Pairs:
    """A JSON object written with these (key, value) pairs, repeats allowed."""

    def __init__(self, pairs):
        self.pairs = pairs


DELETE = object()


def js(v):
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, Pairs):
        return "{" + ",".join(json.dumps(k) + ":" + js(x) for k, x in v.pairs) + "}"
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k) + ":" + js(x) for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(js(x) for x in v) + "]"
    return json.dumps(v)


def event_data(**over):
    ev = {
        "event_id": EID, "project_id": 1, "group_id": 124, "group_ids": [124],
        "organization_id": 3, "primary_hash": HASH, "message": "boom",
        "platform": "python", "datetime": "2024-02-13T20:52:46.831390Z",
        "data": {"type": "error", "exception": {"values": [{"type": "ValueError"}]}},
    }
    for k, v in over.items():
        if v is DELETE:
            ev.pop(k, None)
        else:
            ev[k] = v
    return ev


GROUP_STATES = [{"id": "124", "is_new": False, "is_regression": False,
                 "is_new_group_environment": False}]


def task_state(**over):
    ts = {"is_new": False, "is_regression": False, "is_new_group_environment": False,
          "queue": "post_process_errors", "skip_consume": False,
          "group_states": GROUP_STATES}
    for k, v in over.items():
        if v is DELETE:
            ts.pop(k, None)
        else:
            ts[k] = v
    return ts


_DEFAULT = object()


def insert(version=2, ev=_DEFAULT, ts=_DEFAULT, extra=()):
    return js([version, "insert", event_data() if ev is _DEFAULT else ev,
               task_state() if ts is _DEFAULT else ts] + list(extra)).encode()


def headers(**over):
    """Task headers the way Sentry's producer writes them (null ones left out)."""
    hs = [("Received-Timestamp", "1707857566.831390"), ("event_id", EID), ("project_id", "1"),
          ("group_id", "124"), ("primary_hash", HASH), ("is_new", "0"),
          ("is_new_group_environment", "0"), ("is_regression", "0"), ("skip_consume", "0"),
          ("group_states", json.dumps(GROUP_STATES)), ("queue", "post_process_errors"),
          ("operation", "insert"), ("version", "2")]
    out = []
    for name, value in hs:
        if name in over:
            value = over.pop(name)
            if value is DELETE:
                continue
        out.append((name, value))
    out.extend(over.items())
    return [(n.encode(), v.encode("utf-8", "surrogatepass") if isinstance(v, str) else v)
            for n, v in out]


GARBAGE = b"not json"


def cases():
    out = []

    def add(label, value, expect, fields=None, hs=()):
        out.append(Case(label, value, list(hs), expect, fields or {}))

    # ---- the body: shape, version, operation ----
    add("body: a plain insert", insert(), "job",
        {"source": "body", "version": 2, "project_id": 1, "group_id": 124, "event_id": EID,
         "primary_hash": HASH, "queue": "post_process_errors", "occurrence_id": None,
         "group_states": GROUP_STATES, "cache_key": "e:%s:1" % EID,
         "is_new": False, "is_regression": False, "is_new_group_environment": False})
    add("body: version 1 insert", insert(version=1), "job", {"version": 1})
    add("body: version ' 2 '", insert(version=" 2 "), "job", {"version": 2})
    add("body: version '+2'", insert(version="+2"), "job", {"version": 2})
    add("body: version '0_2'", insert(version="0_2"), "job", {"version": 2})
    add("body: version '\\t2\\n'", insert(version="\t2\n"), "job", {"version": 2})
    add("body: version 2.9 truncates", insert(version=2.9), "job", {"version": 2})
    add("body: version 1.9999 truncates to 1", insert(version=Raw("1.9999")), "job", {"version": 1})
    add("body: version 2e0", insert(version=Raw("2e0")), "job", {"version": 2})
    add("body: version true is 1", insert(version=True), "job", {"version": 1})
    add("body: version false is 0", insert(version=False), "error")
    add("body: version 3", insert(version=3), "error")
    add("body: version 0.5", insert(version=0.5), "error")
    add("body: version -1", insert(version=-1), "error")
    add("body: version 1e400 (int of inf)", insert(version=Raw("1e400")), "error")
    add("body: version '2.0'", insert(version="2.0"), "error")
    add("body: version '2_'", insert(version="2_"), "error")
    add("body: version '0__2'", insert(version="0__2"), "error")
    add("body: version ''", insert(version=""), "error")
    add("body: version null", insert(version=None), "error")
    add("body: version [2]", insert(version=[2]), "error")
    add("body: version 2**64+2", insert(version=2 ** 64 + 2), "error")
    add("deviation 6: body version '\\u0662' (Arabic-Indic two)", insert(version="\u0662"), "error")
    add("deviation 6: body version '\\u00a02' (no-break space)", insert(version="\u00a02"), "error")
    add("python: body version '\\u001c2' (int() does not strip \\x1c)", insert(version="\x1c2"), "error")
    add("python: body version '\\u001f1' (int() does not strip \\x1f)", insert(version="\x1f1"), "error")
    add("deviation 6: body version '\\u00852' (NEL)", js(["\x852", "start_merge"]).encode(), "error")
    add("deviation 6: body version '\\uff12' (fullwidth two)", js(["\uff12", "start_merge"]).encode(), "error")
    add("body: [] ", b"[]", "error")
    add("body: [2]", b"[2]", "error")
    add("body: {}", b"{}", "error")
    add("body: a string", b'"2insert"', "error")
    add("body: a number", b"2", "error")
    add("body: empty", b"", "error")
    add("body: null value", None, "error")
    add("body: insert with 3 elements", js([2, "insert", event_data()]).encode(), "error")
    add("body: insert with 5 elements", insert(extra=[{}]), "error")
    add("body: insert with 5 elements, skip_consume", insert(ts=task_state(skip_consume=True), extra=[1]), "error")
    add("body: operation missing", b"[2]", "error")
    add("body: operation null", js([2, None, {}]).encode(), "error")
    add("body: operation 5", js([2, 5, {}]).encode(), "error")
    add("body: operation a list", js([2, ["insert"], {}]).encode(), "error")
    add("body: operation an object", js([2, {"a": 1}, {}]).encode(), "error")
    add("body: operation 'INSERT'", js([2, "INSERT", event_data(), task_state()]).encode(), "error")
    add("body: operation 'insert\\u0000'", js([2, "insert\x00", event_data(), task_state()]).encode(), "error")
    add("body: unknown operation", js([2, "explode", {}]).encode(), "error")
    for op in ("start_unmerge_hierarchical", "end_unmerge_hierarchical"):
        add("body: v2 %s skips (deviation 8)" % op, js([2, op, {"project_id": 1}]).encode(), "skip")
        add("body: v1 %s (deviation 8 is version 2's)" % op, js([1, op, {"project_id": 1}]).encode(), "error")
    for op in ("delete", "delete_groups", "merge", "unmerge"):
        add("body: v1 %s" % op, js([1, op, {"project_id": 1}]).encode(), "skip")
        add("body: v2 %s (a v1 operation)" % op, js([2, op, {"project_id": 1}]).encode(), "error")
    for op in ("start_delete_groups", "end_delete_groups", "start_merge", "end_merge",
               "start_unmerge", "end_unmerge", "start_delete_tag", "end_delete_tag",
               "exclude_groups", "tombstone_events", "replace_group"):
        add("body: v2 %s" % op, js([2, op, {"project_id": 1}]).encode(), "skip")
        add("body: v1 %s (a v2 operation)" % op, js([1, op, {"project_id": 1}]).encode(), "error")
    add("body: a replacement with no data", b'[2,"start_merge"]', "skip")
    add("body: a replacement with extra elements", b'[2,"end_merge",{},1,2,3]', "skip")
    add("body: a replacement, version ' 2'", b'[" 2","end_merge",{}]', "skip")

    # ---- skip_consume ----
    for v in (True, 1, -1, 0.5, "0", "false", " ", [0], {"a": None}, Raw("1e400")):
        add("body: skip_consume %s is truthy" % js(v), insert(ts=task_state(skip_consume=v)), "skip")
    for v in (False, 0, 0.0, Raw("-0.0"), Raw("0e5"), "", [], {}, None):
        add("body: skip_consume %s is falsy" % js(v), insert(ts=task_state(skip_consume=v)), "job")
    add("body: skip_consume absent", insert(ts=task_state(skip_consume=DELETE)), "job")
    add("body: skip before event_data is read", js([2, "insert", "garbage", {"skip_consume": True}]).encode(), "skip")
    add("body: skip with event_data null", js([2, "insert", None, {"skip_consume": 1}]).encode(), "skip")
    add("body: skip with bad fields", insert(ev=event_data(project_id="x", event_id=None),
                                              ts=task_state(skip_consume=True, queue=5,
                                                            group_states=Raw('["\\u0000"]'))), "skip")

    # ---- task_state and event_data shapes ----
    add("body: task_state {}", insert(ts={}), "error")
    add("body: task_state null", insert(ts=None), "error")
    add("body: task_state []", insert(ts=[]), "error")
    add("body: task_state [1]", insert(ts=[1]), "error")
    add("body: task_state 'x'", insert(ts="x"), "error")
    add("body: task_state 0", insert(ts=0), "error")
    add("body: event_data a list", insert(ev=[1, 2]), "error")
    add("body: event_data null", insert(ev=None), "error")
    add("body: event_data {}", insert(ev={}), "error")

    # ---- flags ----
    add("body: null flags", insert(ts=task_state(is_new=None, is_regression=None, is_new_group_environment=None)),
        "job", {"is_new": None, "is_regression": None, "is_new_group_environment": None})
    add("body: true flags", insert(ts=task_state(is_new=True, is_regression=True, is_new_group_environment=True)),
        "job", {"is_new": True, "is_regression": True, "is_new_group_environment": True})
    add("body: flags 1, 'yes', [0]", insert(ts=task_state(is_new=1, is_regression="yes", is_new_group_environment=[0])),
        "job", {"is_new": True, "is_regression": True, "is_new_group_environment": True})
    add("body: flags 0, '', {}", insert(ts=task_state(is_new=0, is_regression="", is_new_group_environment={})),
        "job", {"is_new": False, "is_regression": False, "is_new_group_environment": False})
    add("body: flags 0.0, [], \"0\"", insert(ts=task_state(is_new=0.0, is_regression=[], is_new_group_environment="0")),
        "job", {"is_new": False, "is_regression": False, "is_new_group_environment": True})
    for name in ("is_new", "is_regression", "is_new_group_environment"):
        add("body: %s missing" % name, insert(ts=task_state(**{name: DELETE})), "error")

    # ---- the ids, the hash ----
    add("body: event id upper case with dashes kept",
        insert(ev=event_data(event_id="9CDC4C32-DFF1-4FBB-B012-B0AA9E908126")), "job",
        {"event_id": "9CDC4C32-DFF1-4FBB-B012-B0AA9E908126",
         "cache_key": "e:9CDC4C32-DFF1-4FBB-B012-B0AA9E908126:1"})
    add("body: event id ''", insert(ev=event_data(event_id="")), "job", {"event_id": "", "cache_key": "e::1"})
    add("body: event id with a colon and unicode", insert(ev=event_data(event_id="a:b\u00e9\U0001F600")), "job",
        {"event_id": "a:b\u00e9\U0001F600"})
    add("body: event id escaped '\\u00e9'", insert(ev=event_data(event_id=Raw('"\\u00e9\\ud83d\\ude00"'))), "job",
        {"event_id": "\u00e9\U0001F600"})
    add("body: event id null", insert(ev=event_data(event_id=None)), "error")
    add("body: event id 5", insert(ev=event_data(event_id=5)), "error")
    add("body: event id missing", insert(ev=event_data(event_id=DELETE)), "error")
    add("body: event id with \\u0000", insert(ev=event_data(event_id="ab\x00cd")), "error")
    add("body: event id with an unpaired surrogate (deviation 5)", insert(ev=event_data(event_id=Raw('"a\\ud800"'))), "error")
    add("body: queue with an unpaired low surrogate (deviation 5)", insert(ts=task_state(queue=Raw('"\\udc00x"'))), "error")
    add("body: primary_hash with a high surrogate then a non-low escape (deviation 5)",
        insert(ev=event_data(primary_hash=Raw('"\\ud800\\u0041"'))), "error")
    add("body: occurrence_id with two high surrogates (deviation 5)",
        insert(ev=event_data(occurrence_id=Raw('"\\ud800\\ud800"'))), "error")
    add("body: event id with a surrogate pair", insert(ev=event_data(event_id=Raw('"\\uD83D\\uDE00"'))), "job",
        {"event_id": "\U0001F600"})
    add("headers: event id with a UTF-8-encoded surrogate reads the body", insert(), "job", {"source": "body"},
        headers(event_id=b"a\xed\xa0\x80"))
    add("body: project_id missing", insert(ev=event_data(project_id=DELETE)), "error")
    add("body: project_id '7'", insert(ev=event_data(project_id="7")), "error")
    add("body: project_id 7.0", insert(ev=event_data(project_id=Raw("7.0"))), "error")
    add("body: project_id 7e0", insert(ev=event_data(project_id=Raw("7e0"))), "error")
    add("body: project_id true", insert(ev=event_data(project_id=True)), "error")
    add("body: project_id null", insert(ev=event_data(project_id=None)), "error")
    add("body: project_id -1", insert(ev=event_data(project_id=-1)), "job", {"project_id": -1, "cache_key": "e:%s:-1" % EID})
    add("body: project_id -0", insert(ev=event_data(project_id=Raw("-0"))), "job", {"project_id": 0})
    add("body: project_id int64 max", insert(ev=event_data(project_id=INT64_MAX)), "job", {"project_id": INT64_MAX})
    add("body: project_id int64 min", insert(ev=event_data(project_id=INT64_MIN)), "job", {"project_id": INT64_MIN})
    add("body: project_id 2**63", insert(ev=event_data(project_id=INT64_MAX + 1)), "error")
    add("body: project_id -2**63-1", insert(ev=event_data(project_id=INT64_MIN - 1)), "error")
    add("body: project_id 2**64", insert(ev=event_data(project_id=2 ** 64)), "error")
    add("body: group_id null", insert(ev=event_data(group_id=None)), "job", {"group_id": None})
    add("body: group_id missing", insert(ev=event_data(group_id=DELETE)), "error")
    add("body: group_id 1.5", insert(ev=event_data(group_id=1.5)), "error")
    add("body: group_id '124'", insert(ev=event_data(group_id="124")), "error")
    add("body: group_id 2**63", insert(ev=event_data(group_id=INT64_MAX + 1)), "error")
    add("body: group_id -5", insert(ev=event_data(group_id=-5)), "job", {"group_id": -5})
    add("body: group_id int64 min", insert(ev=event_data(group_id=INT64_MIN)), "job", {"group_id": INT64_MIN})
    add("body: group_id int64 max", insert(ev=event_data(group_id=INT64_MAX)), "job", {"group_id": INT64_MAX})
    add("body: primary_hash null", insert(ev=event_data(primary_hash=None)), "job", {"primary_hash": None})
    add("body: primary_hash missing", insert(ev=event_data(primary_hash=DELETE)), "error")
    add("body: primary_hash 5", insert(ev=event_data(primary_hash=5)), "error")
    add("body: primary_hash with \\u0000", insert(ev=event_data(primary_hash="a\x00")), "error")
    add("body: occurrence_id absent", insert(), "job", {"occurrence_id": None})
    add("body: occurrence_id null", insert(ev=event_data(occurrence_id=None)), "job", {"occurrence_id": None})
    add("body: occurrence_id kept", insert(ev=event_data(occurrence_id="aaaa")), "job", {"occurrence_id": "aaaa"})
    add("body: occurrence_id 5", insert(ev=event_data(occurrence_id=5)), "error")
    add("body: occurrence_id with \\u0000", insert(ev=event_data(occurrence_id="\x00")), "error")
    add("body: repeated event_id key, the last wins",
        insert(ev=Pairs([("event_id", "first"), ("project_id", 1), ("group_id", 1),
                         ("primary_hash", None), ("event_id", "second")])), "job", {"event_id": "second"})
    add("body: repeated is_new key, the last wins",
        insert(ts=Pairs([("is_new", True), ("is_regression", False), ("is_new_group_environment", False),
                         ("is_new", None)])), "job", {"is_new": None})
    add("body: repeated skip_consume key, the last wins",
        insert(ts=Pairs([("skip_consume", False), ("is_new", True), ("is_regression", False),
                         ("is_new_group_environment", False), ("skip_consume", True)])), "skip")

    # ---- queue ----
    add("body: queue absent", insert(ts=task_state(queue=DELETE)), "job", {"queue": None})
    add("body: queue null", insert(ts=task_state(queue=None)), "job", {"queue": None})
    add("body: queue kept", insert(ts=task_state(queue="post_process_transactions")), "job",
        {"queue": "post_process_transactions"})
    add("body: queue ''", insert(ts=task_state(queue="")), "job", {"queue": ""})
    add("body: queue 5", insert(ts=task_state(queue=5)), "error")
    add("body: queue with \\u0000", insert(ts=task_state(queue="q\x00")), "error")

    # ---- group_states ----
    add("body: group_states absent", insert(ts=task_state(group_states=DELETE)), "job", {"group_states": None})
    add("body: group_states null", insert(ts=task_state(group_states=None)), "job", {"group_states": None})
    add("body: group_states []", insert(ts=task_state(group_states=[])), "job", {"group_states": []})
    add("body: group_states an object", insert(ts=task_state(group_states={"id": 1})), "job", {"group_states": {"id": 1}})
    add("body: group_states a string", insert(ts=task_state(group_states="x")), "job", {"group_states": "x"})
    add("body: group_states 1.5", insert(ts=task_state(group_states=1.5)), "job", {"group_states": 1.5})
    add("body: group_states false", insert(ts=task_state(group_states=False)), "job", {"group_states": False})
    add("body: group_states 0", insert(ts=task_state(group_states=0)), "job", {"group_states": 0})
    add("body: group_states types kept", insert(ts=task_state(group_states=Raw('[1, 1.0, true, "1", 1e2, -0, null]'))),
        "job", {"group_states": [1, 1.0, True, "1", 100.0, 0, None]})
    add("body: group_states repeated key, last wins", insert(ts=task_state(group_states=Raw('{"a": 1, "a": "2"}'))),
        "job", {"group_states": {"a": "2"}})
    add("deviation 4: group_states whose repeated, dropped member holds an unpaired surrogate (jsonb_in reads it)",
        insert(ts=task_state(group_states=Raw('[{"a": "\\ude0f", "a": 1}]'))), "error")
    add("body: group_states with \\u0000", insert(ts=task_state(group_states=Raw('[{"id": "\\u0000"}]'))), "error")
    add("body: group_states key with \\u0000", insert(ts=task_state(group_states=Raw('[{"\\u0000": 1}]'))), "error")
    add("body: group_states with an unpaired surrogate", insert(ts=task_state(group_states=Raw('["\\ud800"]'))), "error")
    add("body: group_states with an unpaired low surrogate", insert(ts=task_state(group_states=Raw('["\\udc00\\ud800"]'))), "error")
    add("body: group_states key with an unpaired surrogate", insert(ts=task_state(group_states=Raw('{"\\udfff": 1}'))), "error")
    add("body: group_states with a surrogate pair", insert(ts=task_state(group_states=Raw('["\\ud83d\\ude00"]'))), "job",
        {"group_states": ["\U0001F600"]})
    add("body: group_states 1000 digits", insert(ts=task_state(group_states=Raw("[" + "9" * 1000 + "]"))), "job",
        {"group_states": [int("9" * 1000)]})
    add("body: group_states 1001 digits", insert(ts=task_state(group_states=Raw("[" + "9" * 1001 + "]"))), "error")
    add("body: group_states -1000 digits", insert(ts=task_state(group_states=Raw("[-" + "9" * 1000 + "]"))), "job")
    add("body: group_states 1000 digits with a fraction",
        insert(ts=task_state(group_states=Raw("[" + "1" * 500 + "." + "1" * 500 + "]"))), "job")
    add("body: group_states 1001 digits with a fraction",
        insert(ts=task_state(group_states=Raw("[" + "1" * 500 + "." + "1" * 501 + "]"))), "error")
    add("body: group_states exponent 1000", insert(ts=task_state(group_states=Raw("[1e1000]"))), "job",
        {"group_states": [float("inf")]})
    add("body: group_states exponent -1000", insert(ts=task_state(group_states=Raw("[1E-1000]"))), "job",
        {"group_states": [0.0]})
    add("body: group_states exponent +1000", insert(ts=task_state(group_states=Raw("[2.5e+1000]"))), "job")
    add("body: group_states exponent 1001", insert(ts=task_state(group_states=Raw("[1e1001]"))), "error")
    add("body: group_states exponent -1001", insert(ts=task_state(group_states=Raw("[1e-1001]"))), "error")
    add("body: group_states exponent 0001001", insert(ts=task_state(group_states=Raw("[1e0001001]"))), "error")
    add("body: group_states exponent 0001000", insert(ts=task_state(group_states=Raw("[1e0001000]"))), "job")
    add("body: a 1001-digit number outside group_states", insert(ev=event_data(data=Raw("[" + "9" * 1001 + "]"))), "job")
    add("body: a 5000-digit number outside group_states", insert(ev=event_data(data=Raw("[" + "9" * 5000 + "]"))), "job")
    add("body: \\u0000 outside the kept fields", insert(ev=event_data(message="a\x00b", data={"\x00": "\x00"})), "job")
    add("body: unpaired surrogates outside the kept fields",
        insert(ev=event_data(message=Raw('"\\ud800"'), data=Raw('{"\\udc00": "\\ud800"}'))), "job")

    # ---- strict JSON (deviation 7) ----
    add("body: NaN in event data", insert(ev=event_data(data=Raw("[NaN]"))), "error")
    add("body: Infinity in event data", insert(ev=event_data(data=Raw("Infinity"))), "error")
    add("body: -Infinity in group_states", insert(ts=task_state(group_states=Raw("[-Infinity]"))), "error")
    add("body: NaN in a replacement", b'[2,"start_merge",{"x":NaN}]', "error")
    add("body: a UTF-8 BOM", b"\xef\xbb\xbf" + insert(), "error")
    add("body: UTF-16", insert().decode().encode("utf-16-le"), "error")
    add("body: UTF-16 with BOM", insert().decode().encode("utf-16"), "error")
    add("body: UTF-32", insert().decode().encode("utf-32-le"), "error")
    add("body: an overlong '/'", insert(ev=event_data(message="a")).replace(b'"a"', b'"\xc0\xaf"'), "error")
    add("body: a UTF-8 surrogate", insert(ev=event_data(message="a")).replace(b'"a"', b'"\xed\xa0\x80"'), "error")
    add("body: invalid UTF-8 in event data", insert(ev=event_data(message="a")).replace(b'"a"', b'"\xff"'), "error")
    add("body: U+10FFFF in event data", insert(ev=event_data(message="\U0010FFFF")), "job")
    add("body: beyond U+10FFFF", insert(ev=event_data(message="a")).replace(b'"a"', b'"\xf4\x90\x80\x80"'), "error")
    add("body: a raw control character in a string", insert(ev=event_data(message="a")).replace(b'"a"', b'"\x01"'), "error")
    add("body: a raw DEL in a string", insert(ev=event_data(message="a")).replace(b'"a"', b'"\x7f"'), "job")
    add("body: a raw NUL outside strings", insert() + b"\x00", "error")
    add("body: trailing garbage", insert() + b" x", "error")
    add("body: two values", insert() + insert(), "error")
    add("body: surrounding whitespace", b" \t\r\n" + insert() + b"\n\r\t ", "job")
    add("body: form feed is not JSON whitespace", b"\x0c" + insert(), "error")
    add("body: a trailing comma", insert()[:-1] + b",]", "error")
    add("body: single quotes", b"[2,'start_merge']", "error")
    add("body: a comment", b'[2,"start_merge" /* c */]', "error")
    add("body: a leading zero", insert(ev=event_data(data=Raw("[01]"))), "error")
    add("body: a leading zero after a minus", insert(ev=event_data(data=Raw("[-01]"))), "error")
    add("body: '1.e5'", insert(ev=event_data(data=Raw("[1.e5]"))), "error")
    add("body: '1.' in group_states", insert(ts=task_state(group_states=Raw("[1.]"))), "error")
    add("body: NaN in group_states", insert(ts=task_state(group_states=Raw("[NaN]"))), "error")
    add("body: NaN as a flag", insert(ts=task_state(is_new=Raw("NaN"))), "error")
    add("body: NaN as skip_consume", insert(ts=task_state(skip_consume=Raw("NaN"))), "error")
    add("body: a raw tab in a string", insert(ev=event_data(message="a")).replace(b'"a"', b'"\t"'), "error")
    add("body: a raw newline in a string", insert(ev=event_data(message="a")).replace(b'"a"', b'"\n"'), "error")
    add("body: a raw control character in event_id",
        insert(ev=event_data(event_id="e")).replace(b'"e"', b'"e\x01"'), "error")
    add("body: a raw control character in queue", insert(ts=task_state(queue="q")).replace(b'"q"', b'"q\x03"'), "error")
    add("body: a raw control character in group_states",
        insert(ts=task_state(group_states=["g"])).replace(b'"g"', b'"\x05"'), "error")
    add("body: a raw control character in a replacement", b'[2,"start_merge",{"a":"\x1f"}]', "error")
    add("body: '1.'", insert(ev=event_data(data=Raw("[1.]"))), "error")
    add("body: '.5'", insert(ev=event_data(data=Raw("[.5]"))), "error")
    add("body: '+1'", insert(ev=event_data(data=Raw("[+1]"))), "error")
    add("body: a bad escape", insert(ev=event_data(data=Raw('"\\x41"'))), "error")
    add("body: a short \\u escape", insert(ev=event_data(data=Raw('"\\u12"'))), "error")
    add("body: True is not JSON", b"[2,\"start_merge\",True]", "error")
    # The body array is level 1 and event_data level 2: data with 62 nested
    # arrays reaches level 64; one more is too deep.
    add("body: nesting 64", insert(ev=event_data(data=Raw("[" * 62 + "]" * 62))), "job")
    add("body: nesting 65", insert(ev=event_data(data=Raw("[" * 63 + "]" * 63))), "error")
    add("body: nesting 65 with objects", insert(ev=event_data(data=Raw('{"a":' * 63 + "1" + "}" * 63))), "error")
    add("body: a replacement nested 64 with objects", b'[2,"start_merge",' + b'{"a":' * 63 + b"1" + b"}" * 63 + b"]", "skip")
    add("body: a replacement nested 65 with objects", b'[2,"start_merge",' + b'{"a":' * 64 + b"1" + b"}" * 64 + b"]", "error")
    add("body: nesting 64 with objects", insert(ev=event_data(data=Raw('{"a":' * 62 + "1" + "}" * 62))), "job")
    add("body: nesting 64 in a replacement", b'[2,"start_merge",' + b"[" * 63 + b"]" * 63 + b"]", "skip")
    add("body: nesting 65 in a replacement", b'[2,"start_merge",' + b"[" * 64 + b"]" * 64 + b"]", "error")
    add("body: brackets inside strings do not nest", insert(ev=event_data(message="[" * 100 + "{" * 100)), "job")
    add("body: nesting 1000", b"[" * 1000 + b"]" * 1000, "error")

    # ---- headers ----
    eid_h = headers()
    add("headers: complete, garbage body", GARBAGE, "job",
        {"source": "headers", "version": 2, "project_id": 1, "group_id": 124, "event_id": EID,
         "primary_hash": HASH, "occurrence_id": None, "queue": "post_process_errors",
         "group_states": GROUP_STATES, "cache_key": "e:%s:1" % EID,
         "is_new": False, "is_regression": False, "is_new_group_environment": False}, eid_h)
    add("headers: complete, null body", None, "job", {"source": "headers"}, eid_h)
    add("headers: no headers at all, garbage body", GARBAGE, "error", hs=[])
    add("headers: only Received-Timestamp", insert(), "job", {"source": "body"},
        [(b"Received-Timestamp", b"1707857566.83")])
    add("headers: no queue header", GARBAGE, "job", {"source": "headers", "queue": None}, headers(queue=DELETE))
    add("headers: queue header with a null value reads the body", insert(ts=task_state(queue="from_body")),
        "job", {"source": "body", "queue": "from_body"}, headers(queue=None))
    add("headers: queue header null, garbage body", GARBAGE, "error", hs=headers(queue=None))
    add("headers: queue header ''", GARBAGE, "job", {"queue": ""}, headers(queue=""))
    add("headers: queue not UTF-8", insert(), "job", {"source": "body"}, headers(queue=b"\xff"))
    add("headers: group_states not JSON", GARBAGE, "job", {"source": "headers", "group_states": None},
        headers(group_states="[{"))
    add("headers: group_states a JSON object", GARBAGE, "job", {"source": "headers", "group_states": None},
        headers(group_states='{"id": 1}'))
    add("headers: group_states a JSON string", GARBAGE, "job", {"group_states": None}, headers(group_states='"[]"'))
    add("headers: group_states null value", GARBAGE, "job", {"group_states": None}, headers(group_states=None))
    add("headers: group_states absent", GARBAGE, "job", {"group_states": None}, headers(group_states=DELETE))
    add("headers: group_states []", GARBAGE, "job", {"group_states": []}, headers(group_states="[]"))
    add("headers: group_states ids as strings", GARBAGE, "job", {"group_states": [{"id": "9"}]},
        headers(group_states='[{"id": "9"}]'))
    add("headers: group_states not UTF-8 reads the body", insert(), "job", {"source": "body"},
        headers(group_states=b'["\xff"]'))
    add("headers: group_states not UTF-8, garbage body", GARBAGE, "error", hs=headers(group_states=b'["\xff"]'))
    add("headers: group_states [NaN] gives None", GARBAGE, "job", {"group_states": None},
        headers(group_states="[NaN]"))
    add("headers: group_states with \\u0000 gives None", GARBAGE, "job", {"group_states": None},
        headers(group_states='["\\u0000"]'))
    add("headers: group_states with a raw NUL gives None", GARBAGE, "job", {"group_states": None},
        headers(group_states='["\x00"]'))
    add("headers: group_states with an unpaired surrogate gives None", GARBAGE, "job", {"group_states": None},
        headers(group_states='["\\ud800"]'))
    add("headers: group_states 1001 digits gives None", GARBAGE, "job", {"group_states": None},
        headers(group_states="[" + "1" * 1001 + "]"))
    add("headers: group_states 1000 digits is kept", GARBAGE, "job", {"group_states": [int("1" * 1000)]},
        headers(group_states="[" + "1" * 1000 + "]"))
    add("headers: group_states exponent 1001 gives None", GARBAGE, "job", {"group_states": None},
        headers(group_states="[1e1001]"))
    add("headers: group_states with a BOM gives None", GARBAGE, "job", {"group_states": None},
        headers(group_states="\ufeff[]"))
    for v in ("[Infinity]", "[-Infinity]", "[1.]", "[1.e5]", "[-01]", "[01]", '["\x01"]', '["\t"]',
              "[1,]", "['a']", '{"a":1}'):
        add("headers: group_states %r is not strict JSON, gives None" % v, GARBAGE, "job",
            {"group_states": None, "source": "headers"}, headers(group_states=v))
    nested = []
    for _ in range(63):
        nested = [nested]
    add("headers: group_states nested 64 is kept", GARBAGE, "job", {"group_states": nested},
        headers(group_states="[" * 64 + "]" * 64))
    add("reading: headers group_states nested 65 gives None", GARBAGE, "job", {"group_states": None},
        headers(group_states="[" * 65 + "]" * 65))
    add("headers: group_states with whitespace", GARBAGE, "job", {"group_states": [1]},
        headers(group_states=" [ 1 ] "))
    add("headers: a long group_states", GARBAGE, "job", {"group_states": GROUP_STATES * 20},
        headers(group_states=json.dumps(GROUP_STATES * 20)))
    add("headers: event id upper case with dashes kept", GARBAGE, "job",
        {"event_id": "9CDC4C32-DFF1-4FBB-B012-B0AA9E908126", "cache_key": "e:9CDC4C32-DFF1-4FBB-B012-B0AA9E908126:1"},
        headers(event_id="9CDC4C32-DFF1-4FBB-B012-B0AA9E908126"))
    add("headers: event id ''", GARBAGE, "job", {"event_id": ""}, headers(event_id=""))
    add("headers: event id missing", insert(), "job", {"source": "body"}, headers(event_id=DELETE))
    add("headers: event id null", insert(), "job", {"source": "body"}, headers(event_id=None))
    add("headers: event id not UTF-8", insert(), "job", {"source": "body"}, headers(event_id=b"\xc3"))
    add("headers: event id with a NUL (deviation 5)", insert(), "job", {"source": "body", "event_id": EID},
        headers(event_id="ab\x00cd"))
    add("headers: primary_hash with a NUL (deviation 5)", insert(), "job", {"source": "body"},
        headers(primary_hash="a\x00"))
    add("headers: occurrence_id with a NUL (deviation 5)", insert(), "job", {"source": "body"},
        headers(occurrence_id="\x00"))
    add("headers: queue with a NUL (deviation 5)", insert(), "job", {"source": "body"}, headers(queue="q\x00"))
    add("headers: a NUL in Received-Timestamp is not read", GARBAGE, "job", {"source": "headers"},
        headers(**{"Received-Timestamp": "1\x00"}))
    add("headers: occurrence_id kept", GARBAGE, "job", {"occurrence_id": "abc"}, headers(occurrence_id="abc"))
    add("headers: occurrence_id null value", GARBAGE, "job", {"occurrence_id": None}, headers(occurrence_id=None))
    add("headers: primary_hash absent", GARBAGE, "job", {"primary_hash": None}, headers(primary_hash=DELETE))
    add("headers: primary_hash null value", GARBAGE, "job", {"primary_hash": None}, headers(primary_hash=None))
    add("headers: group_id absent", GARBAGE, "job", {"group_id": None}, headers(group_id=DELETE))
    add("headers: group_id null value", GARBAGE, "job", {"group_id": None}, headers(group_id=None))
    add("headers: group_id 'x'", insert(), "job", {"source": "body"}, headers(group_id="x"))
    add("headers: group_id ' +5 '", GARBAGE, "job", {"group_id": 5}, headers(group_id=" +5 "))
    add("headers: group_id 2**63 (deviation 1)", insert(), "job", {"source": "body"}, headers(group_id=str(INT64_MAX + 1)))
    add("headers: project_id ' 7'", GARBAGE, "job", {"project_id": 7, "cache_key": "e:%s:7" % EID}, headers(project_id=" 7"))
    add("headers: project_id '+7'", GARBAGE, "job", {"project_id": 7}, headers(project_id="+7"))
    add("headers: project_id '0_7'", GARBAGE, "job", {"project_id": 7}, headers(project_id="0_7"))
    add("headers: project_id '007'", GARBAGE, "job", {"project_id": 7, "cache_key": "e:%s:7" % EID}, headers(project_id="007"))
    add("headers: project_id '-1'", GARBAGE, "job", {"project_id": -1}, headers(project_id="-1"))
    add("headers: project_id '\\v7\\f'", GARBAGE, "job", {"project_id": 7}, headers(project_id="\x0b7\x0c"))
    add("headers: project_id '7.0'", insert(), "job", {"source": "body"}, headers(project_id="7.0"))
    add("headers: project_id ''", insert(), "job", {"source": "body"}, headers(project_id=""))
    add("headers: project_id '\\x1c7'", insert(), "job", {"source": "body"}, headers(project_id="\x1c7"))
    add("headers: project_id Arabic-Indic digit", insert(), "job", {"source": "body"}, headers(project_id="\u0667"))
    add("headers: project_id int64 max", GARBAGE, "job", {"project_id": INT64_MAX}, headers(project_id=str(INT64_MAX)))
    add("headers: project_id int64 min", GARBAGE, "job", {"project_id": INT64_MIN}, headers(project_id=str(INT64_MIN)))
    add("headers: project_id 2**63 (deviation 1)", insert(), "job", {"source": "body"}, headers(project_id=str(INT64_MAX + 1)))
    add("headers: project_id with 5000 leading zeros", GARBAGE, "job", {"project_id": 7}, headers(project_id="0" * 5000 + "7"))
    add("headers: project_id missing", insert(), "job", {"source": "body"}, headers(project_id=DELETE))
    add("headers: version ' 2 '", GARBAGE, "job", {"version": 2}, headers(version=" 2 "))
    add("headers: version '1'", GARBAGE, "job", {"version": 1}, headers(version="1"))
    add("headers: version '+2'", GARBAGE, "job", {"version": 2}, headers(version="+2"))
    add("headers: version '3'", insert(), "job", {"source": "body"}, headers(version="3"))
    add("headers: version '2.0'", insert(), "job", {"source": "body"}, headers(version="2.0"))
    add("headers: version '2_'", insert(), "job", {"source": "body"}, headers(version="2_"))
    add("headers: version null", insert(), "job", {"source": "body"}, headers(version=None))
    add("headers: version missing", insert(), "job", {"source": "body"}, headers(version=DELETE))
    add("headers: operation missing", insert(), "job", {"source": "body"}, headers(operation=DELETE))
    add("headers: operation 'Insert'", insert(), "job", {"source": "body"}, headers(operation="Insert"))
    add("headers: operation not UTF-8", insert(), "job", {"source": "body"}, headers(operation=b"\xffinsert"))
    add("headers: names are case-sensitive", insert(), "job", {"source": "body"},
        [(n.capitalize() if n == b"version" else n, v) for n, v in headers()])
    add("headers: a name with a trailing NUL is another name", insert(), "job", {"source": "body"},
        [(n + b"\x00" if n == b"version" else n, v) for n, v in headers()])
    add("headers: the last of a repeated header wins", GARBAGE, "job", {"version": 2, "project_id": 9},
        headers() + [(b"version", b"3"), (b"project_id", b"9"), (b"version", b"2")])
    add("headers: a repeated header's last value null", insert(), "job", {"source": "body"},
        headers() + [(b"event_id", None)])
    add("headers: v2 start_merge, no body", b"", "skip", hs=[(b"version", b"2"), (b"operation", b"start_merge")])
    add("headers: v2 tombstone_events, garbage body", GARBAGE, "skip",
        hs=[(b"version", b"2"), (b"operation", b"tombstone_events")])
    add("headers: v1 delete", GARBAGE, "skip", hs=[(b"version", b"1"), (b"operation", b"delete")])
    add("headers: v1 start_merge reads the body", js([2, "start_merge", {}]).encode(), "skip",
        hs=[(b"version", b"1"), (b"operation", b"start_merge")])
    add("headers: v1 start_merge, garbage body", GARBAGE, "error",
        hs=[(b"version", b"1"), (b"operation", b"start_merge")])
    add("headers: v2 end_unmerge_hierarchical skips (deviation 8)", GARBAGE, "skip",
        hs=[(b"version", b"2"), (b"operation", b"end_unmerge_hierarchical")])
    add("headers: v2 start_unmerge_hierarchical skips (deviation 8)", GARBAGE, "skip",
        hs=[(b"version", b"2"), (b"operation", b"start_unmerge_hierarchical")])
    add("headers: v1 end_unmerge_hierarchical reads the body", GARBAGE, "error",
        hs=[(b"version", b"1"), (b"operation", b"end_unmerge_hierarchical")])
    add("headers: v3 start_merge reads the body", insert(), "job", {"source": "body"},
        [(b"version", b"3"), (b"operation", b"start_merge")])
    add("headers: skip_consume '1' skips without the body", GARBAGE, "skip", hs=headers(skip_consume="1"))
    add("headers: skip_consume '-1'", GARBAGE, "skip", hs=headers(skip_consume="-1"))
    add("headers: skip_consume missing reads the body", insert(), "job", {"source": "body"}, headers(skip_consume=DELETE))
    add("headers: skip_consume null reads the body", insert(), "job", {"source": "body"}, headers(skip_consume=None))
    add("headers: skip_consume 'true' reads the body", insert(), "job", {"source": "body"}, headers(skip_consume="true"))
    add("headers: is_new_group_environment missing reads the body", insert(), "job", {"source": "body"},
        headers(is_new_group_environment=DELETE))
    for v, want in ((" 1", True), ("-0", False), ("0_0", False), ("10", True), ("+1", True), ("-1", True),
                    ("\t1\n", True), ("\x0b0\x0c\r", False), ("1" * 5000, True), ("0" * 5000, False),
                    ("00", False), ("1_000", True)):
        add("headers: is_new %r" % v, GARBAGE, "job", {"is_new": want, "source": "headers"}, headers(is_new=v))
    for v in ("", " ", "1_", "_1", "1__0", "0x1", "1.0", "true", "1 1", "--1", "\x001"):
        add("headers: is_regression %r reads the body" % v, insert(), "job", {"source": "body"},
            headers(is_regression=v))
    add("headers: is_regression '1_', garbage body", GARBAGE, "error", hs=headers(is_regression="1_"))
    for v in ("\u0661", "\u00a01", "1\u2003", "\uff11", "\x851"):
        add("headers: is_new %r reads the body (deviation 6)" % v, insert(), "job", {"source": "body"},
            headers(is_new=v))
    add("headers: skip_consume Arabic-Indic one reads the body (deviation 6)", insert(), "job", {"source": "body"},
        headers(skip_consume="\u0661"))
    for v in ("\x1c1", "\x1f0", "1\x1d"):
        add("python: headers is_new %r reads the body (int() does not strip it)" % v, insert(), "job",
            {"source": "body"}, headers(is_new=v))
    add("reading: headers skip_consume '1' with a NUL in event_id reads the body", insert(), "job",
        {"source": "body"}, headers(skip_consume="1", event_id="a\x00"))
    add("reading: headers skip_consume '1' with project_id 2**64 reads the body", insert(), "job",
        {"source": "body"}, headers(skip_consume="1", project_id=str(2 ** 64)))

    # ---- the size limit ----
    big = insert()
    add("body: exactly 25,000,000 bytes", big + b" " * (25_000_000 - len(big)), "job")
    add("body: 25,000,001 bytes", big + b" " * (25_000_001 - len(big)), "error")
    add("headers: 25,000,001-byte body, complete headers", big + b" " * (25_000_001 - len(big)), "job",
        {"source": "headers"}, eid_h)
    return out
