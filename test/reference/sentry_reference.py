#!/usr/bin/python3
"""sentry_reference.py - a reference decoder for Sentry's events-topic messages.

Written from docs/decoding.md and from the rules of Sentry's
src/sentry/eventstream/kafka/protocol.py (get_task_kwargs_for_message,
get_task_kwargs_for_message_from_headers) and dispatch.py (_get_task_kwargs),
independently of the C decoder in src/.  Standard library only.

    decode(value, headers, default_queue='post_process_errors')
      -> ('job', fields) | ('skip', None) | ('error', None)

The code is in two layers, so that a reader sees Sentry's rule and ours apart:

  * sentry_* functions do what Sentry's forwarder does, with Python's own
    int(), bool(), str.decode() and truthiness.  They return Sentry's task
    kwargs, or None for "no task" (a skip), or raise where Sentry raises.
  * Each deviation of docs/decoding.md ("Deviations, and why", numbered 1-8)
    is a separate step on top of that result, commented with its number.

dispatch.py tries the headers first; any exception there means "decode the
body instead", and an exception in the body means the message fails (for the
relay: a dead letter, outcome 'error').

The job fields: version, operation, source ('headers' | 'body'), project_id,
group_id, event_id, primary_hash, is_new, is_regression,
is_new_group_environment (None / False / True), group_states (the parsed JSON
value, or None), occurrence_id, queue (None when the message names none: the
relay then applies the stream's default_queue, see job_queue()), cache_key;
and, not a task argument, group_states_text: the value as JSON text with each
number spelt as in the message, for exact comparisons.
"""
import decimal
import json
import re
import sys

DEFAULT_MAX_MESSAGE_BYTES = 25_000_000   # the topic's max.message.bytes
MAX_JSON_DEPTH = 64
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

# CPython 3.11 refuses to convert a string of more than 4,300 digits with
# int() (ValueError), in json.loads too.  docs/decoding.md has no such limit:
# a flag header is "any other integer true, however long", and a body is
# strict RFC 8259 JSON, which has no limit on a number's length.  The limit is
# an interpreter setting, not one of Sentry's rules, so it is lifted here.
if hasattr(sys, "set_int_max_str_digits"):
    sys.set_int_max_str_digits(0)


class Refused(Exception):
    """One of our rules (a deviation) refuses what Sentry would accept."""


# ---------------------------------------------------------------------------
# Sentry's rules (protocol.py), in Python's terms
# ---------------------------------------------------------------------------

# The operations each protocol version skips (version_handlers).
SKIPPED_OPERATIONS = {
    1: frozenset(["delete", "delete_groups", "merge", "unmerge"]),
    2: frozenset([
        "start_delete_groups", "end_delete_groups",
        "start_merge", "end_merge",
        "start_unmerge", "end_unmerge",
        "start_delete_tag", "end_delete_tag",
        "exclude_groups", "tombstone_events", "replace_group",
    ]),
}


class UnexpectedOperation(Exception):
    def __init__(self, version, operation):
        super().__init__("version %r: unexpected operation %r" % (version, operation))
        self.version = version
        self.operation = operation


# Deviation 8: version 2 operations Sentry's protocol.py does not list (its
# forwarder raises UnexpectedOperation) and the relay skips.
HIERARCHICAL_UNMERGES = frozenset(["start_unmerge_hierarchical", "end_unmerge_hierarchical"])


def sentry_insert_kwargs(operation, event_data, task_state):
    """Sentry's insert handler: exactly (operation, event_data, task_state)."""
    # The skip check comes first, before event_data is looked at.
    if task_state and task_state.get("skip_consume", False):
        return None
    kwargs = {
        "event_id": event_data["event_id"],
        "project_id": event_data["project_id"],
        "group_id": event_data["group_id"],
        "primary_hash": event_data["primary_hash"],
        "occurrence_id": event_data.get("occurrence_id"),
    }
    for name in ("is_new", "is_regression", "is_new_group_environment"):
        kwargs[name] = task_state[name]
    if task_state:
        kwargs["group_states"] = task_state.get("group_states")
        kwargs["queue"] = task_state.get("queue")
    return kwargs


def sentry_handle(version, operation, *data):
    """Sentry's handle_message for a version already known to be 1 or 2.

    Called as handle(*payload[1:]): a missing operation, or an insert with
    other than two more elements, raises TypeError as Python's call would.
    An unhashable operation (a list, an object) raises TypeError in the set
    membership test.
    """
    if operation == "insert":
        return sentry_insert_kwargs(operation, *data)
    if operation in SKIPPED_OPERATIONS[version]:
        return None
    raise UnexpectedOperation(version, operation)


def sentry_handler(version):
    """version_handlers[version]: KeyError for anything but 1 and 2."""
    if version not in SKIPPED_OPERATIONS:
        raise KeyError(version)
    return lambda *args: sentry_handle(version, *args)


def _str(value):
    """decode_str: the header must have a value, which must be UTF-8."""
    if not isinstance(value, bytes):
        raise ValueError("expected a value")
    return value.decode("utf-8")


def _opt_str(value):
    return None if value is None else _str(value)


def _int(value):
    """decode_int: Python's int() of the bytes."""
    if not isinstance(value, bytes):
        raise ValueError("expected a value")
    return int(value)


def _opt_int(value):
    return None if value is None else _int(value)


def _bool(value):
    """decode_bool: bool(int(value.decode()))."""
    return bool(int(_str(value)))


def sentry_group_states_header(text):
    """decode_optional_list_str, with Sentry's catch-all around it: a value
    that is not JSON, or not a JSON list, is logged and passed on as None."""
    if text is None:
        return None
    try:
        parsed = json.loads(text)
    except Exception:
        return None
    return parsed if isinstance(parsed, list) else None


def sentry_from_headers(headers):
    """get_task_kwargs_for_message_from_headers, then the version's handler.

    Returns (kwargs or None, header_data, version, operation).  Raises on
    anything Sentry raises on; dispatch.py then reads the body.
    """
    header_data = {}
    for name, value in headers:          # the last of a repeated name wins
        header_data[name] = value

    def required(name):
        value = header_data[name]        # KeyError when absent
        if value is None:
            raise ValueError("%r has no value" % name)
        return value

    version = _int(required(b"version"))
    operation = _str(required(b"operation"))
    if operation == "insert":
        event_data = {
            "primary_hash": _opt_str(header_data.get(b"primary_hash")),
            "event_id": _str(required(b"event_id")),
            "group_id": _opt_int(header_data.get(b"group_id")),
            "project_id": _int(required(b"project_id")),
            "occurrence_id": _opt_str(header_data.get(b"occurrence_id")),
        }
        task_state = {name: _bool(required(name.encode()))
                      for name in ("skip_consume", "is_new", "is_regression",
                                   "is_new_group_environment")}
        # Not UTF-8 raises here, outside Sentry's catch-all for group_states.
        group_states_text = _opt_str(header_data.get(b"group_states"))
        task_state["group_states"] = sentry_group_states_header(group_states_text)
        if b"queue" in header_data:
            task_state["queue"] = _str(required(b"queue"))
        else:
            task_state["queue"] = "post_process_errors"
    else:
        event_data = {}
        task_state = {}
    kwargs = sentry_handler(version)(operation, event_data, task_state)
    return kwargs, header_data, version, operation


def sentry_from_body(payload):
    """get_task_kwargs_for_message after json.loads: (kwargs or None, version)."""
    try:
        version = payload[0]
    except Exception:
        raise ValueError("InvalidPayload")
    version = int(version)   # ValueError, TypeError, OverflowError: all raise
    kwargs = sentry_handler(version)(*payload[1:])
    return kwargs, version


# ---------------------------------------------------------------------------
# Strict JSON (deviation 7) and what jsonb can hold (deviation 4)
# ---------------------------------------------------------------------------

class _Int(int):
    """An integer of the JSON text; jsonb_ok: its literal fits jsonb."""


class _Float(float):
    """A number with a fraction or exponent; jsonb_ok as for _Int."""


_FLOAT_RE = re.compile(r"-?([0-9]+)(?:\.([0-9]+))?(?:[eE]([-+]?[0-9]+))?\Z")


def _parse_int(literal):
    v = _Int(int(literal))
    v.jsonb_ok = len(literal.lstrip("-")) <= 1000
    return v


def _parse_float(literal):
    m = _FLOAT_RE.match(literal)
    digits = len(m.group(1)) + len(m.group(2) or "")
    exponent = int(m.group(3) or "0")
    v = _Float(float(literal))
    v.jsonb_ok = digits <= 1000 and -1000 <= exponent <= 1000
    v.literal = literal
    return v


class _Obj(dict):
    """An object as Python keeps it (the last of a repeated member wins),
    with all_pairs: every member as sent, repeats included, since jsonb_in
    reads them all before it drops the repeats (deviation 4)."""


def _object_pairs(pairs):
    o = _Obj(pairs)
    o.all_pairs = pairs
    return o


def _refuse_constant(name):
    raise ValueError("%s is not JSON" % name)


_NESTING_RE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def json_depth_ok(text, limit=MAX_JSON_DEPTH):
    """True if no array or object is nested deeper than limit (the outermost
    container is level 1).  Strings are skipped; text that is not JSON only
    needs to come out as 'too deep' or 'fine': the parse decides the rest."""
    depth = 0
    for m in _NESTING_RE.finditer(text):
        c = m.group(0)
        if c in "[{":
            depth += 1
            if depth > limit:
                return False
        elif c in "]}":
            depth -= 1
    return True


def strict_loads(data, exact=False):
    """Deviation 7: RFC 8259 JSON only.  Python's json.loads also takes UTF-16
    and UTF-32 bytes, a UTF-8 BOM, UTF-8-encoded surrogates, NaN, Infinity and
    -Infinity, and nesting up to its recursion limit.  Here: the bytes must be
    UTF-8 (strict codec: no surrogates, no overlongs), a BOM is not JSON
    whitespace, the constants are refused, and nesting is at most 64 levels.
    Numbers come back as _Int/_Float carrying jsonb_ok (see plain()), or
    with exact=True as int and decimal.Decimal, for exact comparisons."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    if not json_depth_ok(text):
        raise ValueError("nested too deep")
    if exact:
        return json.loads(text, parse_constant=_refuse_constant,
                          parse_int=int, parse_float=decimal.Decimal)
    return json.loads(text, parse_constant=_refuse_constant,
                      parse_int=_parse_int, parse_float=_parse_float,
                      object_pairs_hook=_object_pairs)


def json_text(value):
    """JSON text of a value from strict_loads, each number spelt as sent
    (json.dumps would print a float, 1e400 as Infinity)."""
    if isinstance(value, dict):
        return "{" + ",".join(json_text(k) + ":" + json_text(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    if isinstance(value, _Float):
        return value.literal
    if isinstance(value, _Int):
        return str(int(value))
    return json.dumps(value, ensure_ascii=False)


def plain(value):
    """The parsed value with plain int and float (type-strict comparisons)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, _Int):
        return int(value)
    if isinstance(value, _Float):
        return float(value)
    return value


def _has_surrogate(s):
    return any(0xD800 <= ord(c) <= 0xDFFF for c in s)


def jsonb_can_hold(value):
    """Deviation 4: PostgreSQL's jsonb refuses a \\u0000 escape, an unpaired
    surrogate escape (Python's json joins a proper pair into one character, so
    any surrogate left in a string is unpaired), a number with more than 1,000
    digits, and an exponent beyond +-1,000, in any member, a repeated one
    that the parsed value no longer holds included."""
    if isinstance(value, dict):
        pairs = getattr(value, "all_pairs", None) or value.items()
        return all(jsonb_can_hold(k) and jsonb_can_hold(v) for k, v in pairs)
    if isinstance(value, list):
        return all(jsonb_can_hold(v) for v in value)
    if isinstance(value, str):
        return "\x00" not in value and not _has_surrogate(value)
    if isinstance(value, (_Int, _Float)):
        return value.jsonb_ok
    return True


# ---------------------------------------------------------------------------
# The headers: Sentry's rule, then ours
# ---------------------------------------------------------------------------

_KEPT_TEXT_HEADERS = (b"event_id", b"primary_hash", b"occurrence_id", b"queue")
_FLAG_HEADERS = (b"skip_consume", b"is_new", b"is_regression", b"is_new_group_environment")


def _in_int64(v):
    return INT64_MIN <= v <= INT64_MAX


def _deviation_8(error):
    """Deviation 8: a hierarchical unmerge of version 2 is skipped, where
    Sentry raises UnexpectedOperation."""
    if error.version == 2 and error.operation in HIERARCHICAL_UNMERGES:
        return ("skip", None)
    raise error


def decode_headers(headers):
    """('job', fields) or ('skip', None); raises for "read the body"."""
    try:
        kwargs, header_data, version, operation = sentry_from_headers(headers)
    except UnexpectedOperation as e:
        return _deviation_8(e)

    # Deviations 1, 6 and 5 are how we read an insert's headers (the "ours"
    # column of docs/decoding.md's header table), so, like Sentry's reading
    # of them, they come before the skip_consume decision: a header we cannot
    # read sends us to the body even when skip_consume is "1".
    if operation == "insert":
        # Deviation 1: project_id and group_id within 64 bits, else the body.
        project_id = _int(header_data[b"project_id"])
        group_id = _opt_int(header_data.get(b"group_id"))
        if not _in_int64(project_id) or (group_id is not None and not _in_int64(group_id)):
            raise Refused("deviation 1: an id beyond 64 bits")

        # Deviation 6: Python's int() of a str also takes other scripts'
        # digits and Unicode spaces; a flag header with any non-ASCII
        # character sends us to the body.  (Sentry has already decoded every
        # flag above, so a value Python refuses never gets here.)
        for name in _FLAG_HEADERS:
            if any(b >= 0x80 for b in header_data[name]):
                raise Refused("deviation 6: a non-ASCII flag header")

        # Deviation 5: no NUL in a header the job keeps as text.  (An
        # unpaired surrogate, encoded in UTF-8, already failed Sentry's UTF-8
        # decoding above.)
        for name in _KEPT_TEXT_HEADERS:
            value = header_data.get(name)
            if value is not None and b"\x00" in value:
                raise Refused("deviation 5: NUL in %s" % name.decode())

    if kwargs is None:
        return ("skip", None)

    # Deviation 4: group_states is JSON we can store in jsonb.  Sentry passes
    # on any list Python's json.loads makes of the header; we read it as
    # strict JSON (deviation 7's parser, nesting at most 64 too) and give
    # None for anything jsonb cannot hold, as Sentry gives None for a value
    # that is not a list.  The body is not read for it.
    group_states = None
    text = header_data.get(b"group_states")
    if text is not None:
        try:
            parsed = strict_loads(text)
        except Exception:
            parsed = None
        if isinstance(parsed, list) and jsonb_can_hold(parsed):
            group_states = parsed

    # Deviation 3: no queue header means the stream's default, not
    # post_process_errors: the job names no queue.
    queue = kwargs["queue"] if b"queue" in header_data else None

    return ("job", _fields(version, "headers", kwargs, group_states, queue,
                           kwargs["is_new"], kwargs["is_regression"],
                           kwargs["is_new_group_environment"]))


# ---------------------------------------------------------------------------
# The body: Sentry's rule, then ours
# ---------------------------------------------------------------------------

def decode_body(value, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES):
    """('job', fields) or ('skip', None); raises for 'error'."""
    if value is None:
        raise ValueError("a message without a value")   # Sentry: len(None)

    # Size: at most sentry_relay.max_message_size bytes (Sentry has no limit).
    if len(value) > max_message_bytes:
        raise Refused("message_too_large")

    # Deviation 7: strict JSON instead of Sentry's json.loads.
    marked = strict_loads(value)
    payload = plain(marked)

    # Deviation 6: a version string with a non-ASCII character (another
    # script's digits, a Unicode space), which Python's int() of a str
    # takes, is not a version here.
    if (isinstance(payload, list) and payload and isinstance(payload[0], str)
            and any(ord(c) >= 0x80 for c in payload[0])):
        raise Refused("deviation 6: a non-ASCII version string")

    try:
        kwargs, version = sentry_from_body(payload)
    except UnexpectedOperation as e:
        return _deviation_8(e)
    if kwargs is None:
        return ("skip", None)

    # Deviation 1: the ids and the hash have the types the job's columns hold.
    event_id = kwargs["event_id"]
    if not isinstance(event_id, str):
        raise Refused("deviation 1: event_id is not a string")
    for name, nullable in (("project_id", False), ("group_id", True)):
        v = kwargs[name]
        if v is None and nullable:
            continue
        if type(v) is not int:           # bool is not an integer here
            raise Refused("deviation 1: %s is not an integer" % name)
        if not _in_int64(v):
            raise Refused("deviation 1: %s beyond 64 bits" % name)
    for name in ("primary_hash", "occurrence_id"):
        if kwargs[name] is not None and not isinstance(kwargs[name], str):
            raise Refused("deviation 1: %s is not a string" % name)

    # Deviation 2: a flag is None, or the Python truth value of what was sent.
    flags = [None if kwargs[n] is None else bool(kwargs[n])
             for n in ("is_new", "is_regression", "is_new_group_environment")]

    # Deviation 3: queue is a string or null; null or absent names no queue
    # (the stream's default_queue applies).
    queue = kwargs.get("queue")
    if queue is not None and not isinstance(queue, str):
        raise Refused("deviation 3: queue is not a string")

    # Deviation 4: group_states is any JSON value jsonb can hold; null is None.
    group_states = None
    if kwargs.get("group_states") is not None:
        group_states = marked[3]["group_states"]
        if not jsonb_can_hold(group_states):
            raise Refused("deviation 4: group_states jsonb cannot hold")

    # Deviation 5: no NUL and no unpaired surrogate (an escape such as
    # "\ud800"; Python's json joins a proper pair) in a string the job keeps.
    kept = [event_id, kwargs["primary_hash"], kwargs["occurrence_id"], queue]
    if any(s is not None and "\x00" in s for s in kept):
        raise Refused("deviation 5: NUL in a kept string")
    if any(s is not None and _has_surrogate(s) for s in kept):
        raise Refused("deviation 5: an unpaired surrogate in a kept string")

    return ("job", _fields(version, "body", kwargs, group_states, queue, *flags))


def _fields(version, source, kwargs, group_states, queue, is_new, is_regression, is_nge):
    return {
        "version": version,
        "operation": "insert",
        "source": source,
        "project_id": kwargs["project_id"],
        "group_id": kwargs["group_id"],
        "event_id": kwargs["event_id"],
        "primary_hash": kwargs["primary_hash"],
        "is_new": is_new,
        "is_regression": is_regression,
        "is_new_group_environment": is_nge,
        "group_states": None if group_states is None else plain(group_states),
        # Not a task argument: the value's JSON text with each number spelt
        # as sent, to compare numbers exactly (a float loses digits).
        "group_states_text": None if group_states is None else json_text(group_states),
        "occurrence_id": kwargs["occurrence_id"],
        "queue": queue,
        # cache_key_for_event: e:{event_id}:{project_id}
        "cache_key": "e:%s:%s" % (kwargs["event_id"], kwargs["project_id"]),
    }


# ---------------------------------------------------------------------------
# dispatch.py: headers first, then the body
# ---------------------------------------------------------------------------

def _name_bytes(name):
    return name.encode("utf-8", "surrogateescape") if isinstance(name, str) else bytes(name)


def decode(value, headers=(), default_queue="post_process_errors",
           max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES):
    """Decode one events-topic message.

    value: the message's bytes, or None for a message without a value.
    headers: a sequence of (name, value) with name str or bytes and value
      bytes or None (a header with a null value).
    default_queue: the stream's default_queue.  It does not change the job's
      'queue' field, which stays None when the message names no queue (as the
      C decoder leaves it NULL); job_queue() gives the queue the relay uses.
    """
    del default_queue   # see job_queue()
    headers = [(_name_bytes(n), None if v is None else bytes(v)) for n, v in headers]
    if headers:
        try:
            return decode_headers(headers)
        except Exception:
            pass          # dispatch.py: any exception means "read the body"
    try:
        return decode_body(value, max_message_bytes)
    except Exception:
        return ("error", None)


def job_queue(fields, default_queue="post_process_errors"):
    """The queue the relay's job row gets (deviation 3)."""
    return fields["queue"] if fields["queue"] is not None else default_queue


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="decode one message body (and headers)")
    ap.add_argument("body", help="file with the message value ('-' for stdin)")
    ap.add_argument("--header", action="append", default=[], metavar="NAME=VALUE")
    args = ap.parse_args()
    raw = sys.stdin.buffer.read() if args.body == "-" else open(args.body, "rb").read()
    hs = [tuple(h.split("=", 1)) for h in args.header]
    outcome, fields = decode(raw, [(n, v.encode()) for n, v in hs])
    print(json.dumps({"result": outcome, "job": fields}, ensure_ascii=False))
