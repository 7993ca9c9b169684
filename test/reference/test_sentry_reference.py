#!/usr/bin/python3
"""Unit tests of the reference decoder (sentry_reference.py), from Sentry's
rules and docs/decoding.md.  Standard library only:

    python3 -m unittest discover -s test/reference
"""
import glob
import json
import os
import struct
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import differential  # noqa: E402
import edge_cases  # noqa: E402
import sentry_reference as ref  # noqa: E402
from edge_cases import DELETE, EID, GARBAGE, Raw, event_data, headers, insert, task_state  # noqa: E402

FIXTURES = os.path.join(HERE, "..", "fixtures", "sentry")


def slurp(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


def decode(value, hs=()):
    return ref.decode(value, list(hs))


class SameTypes:
    def assertSame(self, got, want):
        self.assertTrue(differential.same(got, want), "%r is not %r (type-strict)" % (got, want))


class EdgeCases(unittest.TestCase, SameTypes):
    def test_every_edge_case(self):
        for case in edge_cases.cases():
            with self.subTest(case.label):
                outcome, fields = ref.decode(case.value, case.headers)
                self.assertEqual(outcome, case.expect)
                for name, want in case.fields.items():
                    self.assertSame(fields[name], want)


class Body(unittest.TestCase, SameTypes):
    def test_group_state_ids_as_strings(self):
        gs = [{"id": "124", "is_new": False, "is_regression": False, "is_new_group_environment": False}]
        outcome, f = decode(insert(ts=task_state(group_states=gs)))
        self.assertEqual(outcome, "job")
        self.assertSame(f["group_states"], gs)
        self.assertEqual(f["group_states"][0]["id"], "124")

    def test_group_states_type_strict(self):
        # Python's 1 == True == 1.0; the job keeps which one was sent.
        outcome, f = decode(insert(ts=task_state(group_states=Raw('[1, true, 1.0, "1"]'))))
        self.assertEqual(outcome, "job")
        self.assertEqual([type(v) for v in f["group_states"]], [int, bool, float, str])
        self.assertEqual(f["group_states_text"], '[1,true,1.0,"1"]')
        self.assertFalse(differential.same([1], [True]))
        self.assertFalse(differential.same([1], [1.0]))
        self.assertFalse(differential.same({"a": 0}, {"a": False}))

    def test_null_flags(self):
        outcome, f = decode(insert(ts=task_state(is_new=None, is_regression=None, is_new_group_environment=None)))
        self.assertEqual(outcome, "job")
        self.assertEqual((f["is_new"], f["is_regression"], f["is_new_group_environment"]), (None, None, None))

    def test_flags_are_python_truth_values(self):
        outcome, f = decode(insert(ts=task_state(is_new="0", is_regression=0, is_new_group_environment=[1])))
        self.assertEqual((f["is_new"], f["is_regression"], f["is_new_group_environment"]), (True, False, True))

    def test_skip_consume_string_zero_is_truthy(self):
        self.assertEqual(decode(insert(ts=task_state(skip_consume="0"))), ("skip", None))

    def test_skip_consume_falsy_values(self):
        for v in (False, 0, 0.0, "", [], {}, None):
            with self.subTest(v):
                self.assertEqual(decode(insert(ts=task_state(skip_consume=v)))[0], "job")

    def test_skip_comes_before_event_data(self):
        self.assertEqual(decode(b'[2,"insert",[],{"skip_consume":1}]')[0], "skip")

    def test_event_ids_kept_as_sent(self):
        for eid in ("9CDC4C32DFF14FBBB012B0AA9E908126", "9cdc4c32-dff1-4fbb-b012-b0aa9e908126", "x"):
            with self.subTest(eid):
                outcome, f = decode(insert(ev=event_data(event_id=eid, project_id=7)))
                self.assertEqual(f["event_id"], eid)
                self.assertEqual(f["cache_key"], "e:%s:7" % eid)

    def test_versions(self):
        for v, want in ((" 2 ", 2), ("+2", 2), ("0_2", 2), (2.9, 2), (True, 1), (1, 1), (Raw("2.0"), 2)):
            with self.subTest(v):
                outcome, f = decode(insert(version=v))
                self.assertEqual(outcome, "job")
                self.assertSame(f["version"], want)
        for v in ("2 2", "2_", "", 3, False, None, "two", [2], {"v": 2}, 0.99):
            with self.subTest(v):
                self.assertEqual(decode(insert(version=v))[0], "error")

    def test_insert_arity(self):
        self.assertEqual(decode(insert(extra=[{}]))[0], "error")                     # 5 elements
        self.assertEqual(decode(json.dumps([2, "insert", event_data()]).encode())[0], "error")  # 3

    def test_required_keys(self):
        for name in ("event_id", "project_id", "group_id", "primary_hash"):
            with self.subTest(name):
                self.assertEqual(decode(insert(ev=event_data(**{name: DELETE})))[0], "error")
        for name in ("is_new", "is_regression", "is_new_group_environment"):
            with self.subTest(name):
                self.assertEqual(decode(insert(ts=task_state(**{name: DELETE})))[0], "error")

    def test_null_group_id_and_primary_hash(self):
        outcome, f = decode(insert(ev=event_data(group_id=None, primary_hash=None)))
        self.assertEqual(outcome, "job")
        self.assertIsNone(f["group_id"])
        self.assertIsNone(f["primary_hash"])

    def test_queue_absent_is_none(self):
        outcome, f = decode(insert(ts=task_state(queue=DELETE)))
        self.assertIsNone(f["queue"])
        self.assertEqual(ref.job_queue(f, "post_process_transactions"), "post_process_transactions")
        outcome, f = decode(insert(ts=task_state(queue="q")))
        self.assertEqual(ref.job_queue(f, "post_process_transactions"), "q")

    def test_strict_json(self):
        for body in (b'[2,"start_merge",NaN]', b'[2,"start_merge",Infinity]', b'[2,"start_merge",-Infinity]',
                     b"\xef\xbb\xbf[2,\"start_merge\"]", '[2,"start_merge"]'.encode("utf-16"),
                     b"[" * 65 + b"]" * 65):
            with self.subTest(body[:20]):
                self.assertEqual(decode(body)[0], "error")
        self.assertEqual(decode(b"[2,\"start_merge\"," + b"[" * 62 + b"]" * 62 + b"]")[0], "skip")

    def test_size_limit(self):
        body = insert()
        self.assertEqual(ref.decode(body + b" " * 10, [], max_message_bytes=len(body) + 10)[0], "job")
        self.assertEqual(ref.decode(body + b" " * 11, [], max_message_bytes=len(body) + 10)[0], "error")

    def test_sentry_layer_alone(self):
        # Sentry itself forwards what deviation 1 refuses: the layers differ.
        kwargs, version = ref.sentry_from_body([2, "insert", {"event_id": None, "project_id": "7",
                                                              "group_id": 1.5, "primary_hash": 5},
                                                {"is_new": 1, "is_regression": None,
                                                 "is_new_group_environment": "x"}])
        self.assertEqual(kwargs["project_id"], "7")
        self.assertEqual(kwargs["is_new"], 1)
        self.assertIsNone(kwargs["queue"])
        with self.assertRaises(TypeError):
            ref.sentry_from_body([2, "insert", {}, {"skip_consume": False, "is_new": 1}, 5])


class Headers(unittest.TestCase, SameTypes):
    def test_complete_headers_do_not_read_the_body(self):
        outcome, f = decode(GARBAGE, headers())
        self.assertEqual(outcome, "job")
        self.assertEqual(f["source"], "headers")
        self.assertSame(f["group_states"], edge_cases.GROUP_STATES)

    def test_str_names(self):
        hs = [(n.decode(), v) for n, v in headers()]
        self.assertEqual(decode(GARBAGE, hs)[1]["source"], "headers")

    def test_bool_headers(self):
        for v, want in ((" 1", True), ("-0", False), ("0_0", False), ("10", True), ("0", False),
                        ("1", True), ("007", True), ("-5", True)):
            with self.subTest(v):
                outcome, f = decode(GARBAGE, headers(is_new=v))
                self.assertEqual(outcome, "job")
                self.assertIs(f["is_new"], want)

    def test_bool_header_python_refuses_reads_the_body(self):
        for v in ("", "1_", "true", "1.0", "\x1c1"):
            with self.subTest(v):
                outcome, f = decode(insert(), headers(is_regression=v))
                self.assertEqual(f["source"], "body")
                self.assertEqual(decode(GARBAGE, headers(is_regression=v))[0], "error")

    def test_python_int_facts(self):
        # What the header rules stand on, as this Python does it.
        self.assertEqual(int(b" \t2\n"), 2)
        self.assertEqual(int("0_2"), 2)
        self.assertEqual(int("\u0662"), 2)          # deviation 6: we read the body instead
        self.assertEqual(int("\u00a02"), 2)
        for s in ("\x1c2", "\x1f2", "2\x1d"):       # str.isspace() is true, int() refuses
            self.assertTrue(s.strip() == "2")
            with self.assertRaises(ValueError):
                int(s)
        with self.assertRaises(ValueError):
            int(b"\x1c2")

    def test_non_ascii_digits_read_the_body(self):
        outcome, f = decode(insert(ts=task_state(is_new=True)), headers(is_new="\u0661"))
        self.assertEqual((outcome, f["source"], f["is_new"]), ("job", "body", True))
        # Sentry itself takes the header:
        kwargs = ref.sentry_from_headers(headers(is_new="\u0661"))[0]
        self.assertIs(kwargs["is_new"], True)

    def test_group_states_not_json_or_an_object(self):
        for v in ("[{", '{"id": 1}', "null", "1", "not json"):
            with self.subTest(v):
                outcome, f = decode(GARBAGE, headers(group_states=v))
                self.assertEqual(outcome, "job")
                self.assertEqual(f["source"], "headers")
                self.assertIsNone(f["group_states"])

    def test_queue_header_with_a_null_value_reads_the_body(self):
        outcome, f = decode(insert(ts=task_state(queue="body_queue")), headers(queue=None))
        self.assertEqual((outcome, f["source"], f["queue"]), ("job", "body", "body_queue"))

    def test_no_queue_header(self):
        outcome, f = decode(GARBAGE, headers(queue=DELETE))
        self.assertEqual((outcome, f["queue"]), ("job", None))
        # Sentry's own default, which deviation 3 replaces:
        self.assertEqual(ref.sentry_from_headers(headers(queue=DELETE))[0]["queue"], "post_process_errors")

    def test_replacement_headers_skip(self):
        self.assertEqual(decode(b"", [(b"version", b"2"), (b"operation", b"end_delete_tag")])[0], "skip")
        self.assertEqual(decode(b"", [(b"version", b"1"), (b"operation", b"end_delete_tag")])[0], "error")

    def test_skip_consume_header(self):
        self.assertEqual(decode(GARBAGE, headers(skip_consume="1"))[0], "skip")
        self.assertEqual(decode(GARBAGE, headers(skip_consume="0"))[0], "job")


class Records(unittest.TestCase):
    def test_fuzz_layout(self):
        rec = bytes([0x12, 3]) + b"abc" + bytes([2]) + b"xy" + bytes([1]) + b"n" + bytes([255]) + b"BODY"
        self.assertEqual(differential.fuzz_headers(rec), ([(b"abc", b"xy"), (b"n", None)], b"BODY"))
        # Truncated: the value-length byte is missing, the header has no value.
        self.assertEqual(differential.fuzz_headers(bytes([1, 3]) + b"ab"), ([(b"ab", None)], b""))
        self.assertEqual(differential.fuzz_headers(b""), ([], b""))
        self.assertEqual(differential.fuzz_headers(bytes([5])), ([], b""))

    def test_round_trip(self):
        cases = [([(b"a", b"1"), (b"b", None)], b"body"),
                 ([(b"group_states", b"x" * 300)], b"{}"),
                 ([(b"h%d" % i, b"v") for i in range(20)], b""),
                 ([(b"version", b"2")], None),
                 ([], b"")]
        for hs, body in cases:
            data = differential.encode_record(hs, body)
            (word,) = struct.unpack_from(">I", data)
            rec = data[4:]
            if word & differential.EXTENDED:
                got = differential.extended_record(rec)
            else:
                got = differential.fuzz_headers(rec)
            self.assertEqual(got, (hs, body))


class Fixtures(unittest.TestCase, SameTypes):
    def fixtures(self):
        names = sorted(p for p in glob.glob(os.path.join(FIXTURES, "*.json")) if not p.endswith(".headers.json"))
        self.assertGreater(len(names), 20)
        return names

    def test_outcomes(self):
        for path in self.fixtures():
            name = os.path.basename(path)[:-5]
            with self.subTest(name):
                body = slurp(path)
                want = "skip" if name.startswith("replacement_") or "skip_consume" in name else "job"
                self.assertEqual(decode(body)[0], want)

    def test_headers_give_the_body_job(self):
        for path in self.fixtures():
            hpath = path[:-5] + ".headers.json"
            if not os.path.exists(hpath):
                continue
            with self.subTest(os.path.basename(hpath)):
                body = slurp(path)
                hs = [(n, v.encode()) for n, v in json.loads(slurp(hpath))]
                b_out, b_fields = decode(body)
                h_out, h_fields = decode(GARBAGE, hs)
                self.assertEqual(h_out, b_out)
                if b_out == "job":
                    self.assertEqual(h_fields.pop("source"), "headers")
                    self.assertEqual(b_fields.pop("source"), "body")
                    h_fields.pop("group_states_text")
                    b_fields.pop("group_states_text")
                    for k in b_fields:
                        self.assertSame(h_fields[k], b_fields[k])


if __name__ == "__main__":
    unittest.main()
