#!/usr/bin/python3
"""differential.py - compare the C decoder (test/unit/decode_dump) with the
Python reference (sentry_reference.py) on a file of messages.

The cases file is a sequence of records, each a 4-byte big-endian length word
and then the record's bytes:

  * length word below 2**31: the record is in the fuzz_event layout of
    test/fuzz/fuzz_common.h, read exactly as fuzz_headers() reads it: a count
    byte (& 15), then per header a name-length byte, the name, a value-length
    byte (255: a null value) and the value, stopping early when the bytes run
    out; the rest is the body.  Every fuzz corpus file is such a record as is.
  * length word with bit 31 set (the escape, for what that layout cannot
    hold: values over 254 bytes, more than 15 headers, a message without a
    value): the record is word & 0x7fffffff bytes long, in the extended
    layout: a flags byte (bit 0: the message has no value), a 2-byte header
    count, then per header a 4-byte name length, the name, a 4-byte value
    length (0xffffffff: a null value) and the value, all big-endian; the rest
    is the body.

decode_dump.c reads the same two layouts.  The labels file has one line per
record, "source<TAB>label<TAB>expected outcome or empty".

  differential.py append-edge CASES LABELS
      append edge_cases.cases() to both files
  differential.py compare CASES LABELS C_OUTPUT RESULTS
      decode every record with the reference, compare with decode_dump's
      output, print each mismatch (input in hex, both results) and a summary,
      write one JSON line per record to RESULTS; exit 1 on any mismatch
  differential.py dump CASES
      print the reference's results in decode_dump's format
"""
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sentry_reference as ref  # noqa: E402

EXTENDED = 0x80000000
NULL_VALUE = 0xFFFFFFFF
JOB_FIELDS = ("version", "operation", "source", "project_id", "group_id", "event_id",
              "primary_hash", "is_new", "is_regression", "is_new_group_environment",
              "occurrence_id", "queue", "cache_key")


# ---- the record layouts ----

def fuzz_headers(buf):
    """fuzz_headers() of fuzz_common.h: (headers, body); the body is never None."""
    pos, n = 0, len(buf)
    if n == 0:
        return [], b""
    count = buf[0] & 15
    pos = 1
    headers = []
    for _ in range(count):
        if pos >= n:
            break
        name_len = buf[pos]
        pos += 1
        name = buf[pos:pos + name_len]
        pos += len(name)
        value_len = buf[pos] if pos < n else -1
        pos += 1 if pos < n else 0
        if value_len == 255 or value_len < 0:
            value = None
        else:
            value = buf[pos:pos + value_len]
            pos += len(value)
        headers.append((name, value))
    return headers, buf[pos:]


def extended_record(buf):
    """(headers, body or None) of an extended record."""
    flags = buf[0]
    (count,) = struct.unpack_from(">H", buf, 1)
    pos = 3
    headers = []
    for _ in range(count):
        (nl,) = struct.unpack_from(">I", buf, pos)
        name = buf[pos + 4:pos + 4 + nl]
        pos += 4 + nl
        (vl,) = struct.unpack_from(">I", buf, pos)
        pos += 4
        if vl == NULL_VALUE:
            value = None
        else:
            value = buf[pos:pos + vl]
            pos += vl
        headers.append((name, value))
    body = None if flags & 1 else buf[pos:]
    return headers, body


def read_records(path):
    """[(raw record bytes, extended?, headers, body)]"""
    with open(path, "rb") as f:
        data = f.read()
    out, pos = [], 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise ValueError("truncated length word at %d" % pos)
        (word,) = struct.unpack_from(">I", data, pos)
        length = word & ~EXTENDED & 0xFFFFFFFF
        rec = data[pos + 4:pos + 4 + length]
        if len(rec) != length:
            raise ValueError("truncated record at %d" % pos)
        pos += 4 + length
        if word & EXTENDED:
            headers, body = extended_record(rec)
        else:
            headers, body = fuzz_headers(rec)
        out.append((rec, bool(word & EXTENDED), headers, body))
    return out


def encode_record(headers, body):
    """The record (length word included): fuzz layout when it can hold it."""
    headers = [(ref._name_bytes(n), v) for n, v in headers]
    plain = (body is not None and len(headers) <= 15
             and all(len(n) <= 255 and (v is None or len(v) <= 254) for n, v in headers))
    if plain:
        rec = bytes([len(headers)])
        for n, v in headers:
            rec += bytes([len(n)]) + n + (b"\xff" if v is None else bytes([len(v)]) + v)
        rec += body
        return struct.pack(">I", len(rec)) + rec
    parts = [bytes([1 if body is None else 0]), struct.pack(">H", len(headers))]
    for n, v in headers:
        parts.append(struct.pack(">I", len(n)) + n)
        parts.append(struct.pack(">I", NULL_VALUE) if v is None else struct.pack(">I", len(v)) + v)
    parts.append(body or b"")
    rec = b"".join(parts)
    return struct.pack(">I", EXTENDED | len(rec)) + rec


# ---- results ----

def reference_result(headers, body):
    outcome, fields = ref.decode(body, headers)
    return outcome, fields


def same(a, b):
    """Equality that tells 1, 1.0, True and "1" apart (Python's == does not)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def compare_one(c, outcome, fields):
    """A list of differences between decode_dump's line c and the reference."""
    diffs = []
    if c.get("result") != outcome:
        return ["outcome: C %s, reference %s" % (c.get("result"), outcome)]
    if outcome != "job":
        return []
    job = c.get("job") or {}
    for name in JOB_FIELDS:
        if name not in job:
            diffs.append("%s: missing from the C output" % name)
        elif not same(job[name], fields[name]):
            diffs.append("%s: C %r, reference %r" % (name, job[name], fields[name]))
    # group_states: both texts parsed as strict JSON, numbers as int (an
    # integer literal) or Decimal (a fraction or exponent), compared by value
    # and type: whitespace, key order and a number's spelling do not count.
    text = job.get("group_states_text")
    want = fields["group_states_text"]
    try:
        c_gs = None if text is None else ref.strict_loads(text, exact=True)
    except Exception as e:
        diffs.append("group_states_text: not strict JSON (%s): %s" % (e, _short(text)))
        return diffs
    r_gs = None if want is None else ref.strict_loads(want, exact=True)
    if not same(c_gs, r_gs):
        diffs.append("group_states: C %s, reference %s" % (_short(text), _short(want)))
    return diffs


def _short(s, n=300):
    if s is None:
        return "NULL"
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


def dump_line(outcome, fields):
    if outcome != "job":
        return {"result": outcome, "job": None}
    job = {k: fields[k] for k in JOB_FIELDS}
    job["group_states_text"] = fields["group_states_text"]
    return {"result": outcome, "job": job}


def _hex(rec, limit=4096):
    h = rec[:limit].hex()
    return h if len(rec) <= limit else h + "...(%d bytes)" % len(rec)


def read_c_output(path):
    out = []
    with open(path, "rb") as f:
        for line in f:
            try:
                out.append(json.loads(line.decode("utf-8", "surrogateescape")))
            except Exception as e:
                out.append({"result": "unreadable", "raw": repr(line[:300]), "why": str(e)})
    return out


def read_labels(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            parts += [""] * (3 - len(parts))
            out.append(parts[:3])
    return out


def cmd_compare(cases, labels, c_output, results, max_shown=50):
    records = read_records(cases)
    names = read_labels(labels)
    c_lines = read_c_output(c_output)
    problems = 0
    if len(names) != len(records):
        print("labels: %d lines for %d records" % (len(names), len(records)))
        return 2
    if len(c_lines) != len(records):
        print("decode_dump wrote %d lines for %d records" % (len(c_lines), len(records)))
        problems += 1
    per_source = {}
    mismatches = 0
    with open(results, "w", encoding="utf-8") as out:
        for i, (rec, extended, headers, body) in enumerate(records):
            source, label, expected = names[i]
            outcome, fields = reference_result(headers, body)
            c = c_lines[i] if i < len(c_lines) else {"result": "missing"}
            diffs = compare_one(c, outcome, fields)
            n = per_source.setdefault(source, [0, 0])
            n[0] += 1
            if diffs:
                n[1] += 1
                mismatches += 1
                if mismatches <= max_shown:
                    print("MISMATCH #%d %s: %s" % (i, source, label))
                    for d in diffs:
                        print("  " + d)
                    print("  input (%s record, hex): %s" % ("extended" if extended else "fuzz", _hex(rec)))
                    print("  headers: %r" % [(n_, v if v is None else _short(v.decode("utf-8", "backslashreplace")))
                                             for n_, v in headers])
                    print("  C: %s" % _short(json.dumps(c, ensure_ascii=False), 2000))
                    print("  reference: %s" % _short(json.dumps(dump_line(outcome, fields), ensure_ascii=False), 2000))
            out.write(json.dumps({"i": i, "source": source, "label": label, "expected": expected,
                                  "c": c.get("result"), "ref": outcome, "match": not diffs}) + "\n")
    if mismatches > max_shown:
        print("... %d more mismatches not shown" % (mismatches - max_shown))
    for source in sorted(per_source):
        total, bad = per_source[source]
        print("SOURCE %s %d compared %d mismatched" % (source, total, bad))
    print("TOTAL %d compared %d mismatched" % (len(records), mismatches))
    return 1 if mismatches or problems else 0


def _clean(label):
    return label.replace("\t", " ").replace("\n", " ").replace("\r", " ")


def cmd_append_edge(cases, labels):
    import edge_cases
    with open(cases, "ab") as cf, open(labels, "a", encoding="utf-8") as lf:
        for case in edge_cases.cases():
            cf.write(encode_record(case.headers, case.value))
            lf.write("edge\t%s\t%s\n" % (_clean(case.label.encode("ascii", "backslashreplace").decode()),
                                         case.expect))
    return 0


def cmd_dump(cases):
    for rec, extended, headers, body in read_records(cases):
        outcome, fields = reference_result(headers, body)
        print(json.dumps(dump_line(outcome, fields), ensure_ascii=False))
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "append-edge":
        return cmd_append_edge(argv[2], argv[3])
    if len(argv) == 6 and argv[1] == "compare":
        return cmd_compare(*argv[2:6])
    if len(argv) == 3 and argv[1] == "dump":
        return cmd_dump(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
