#!/usr/bin/python3
"""relay_latency.py - scenario D of the relay benchmark: steady traffic with
the writer's commit log trailing by one batch.

  relay_latency.py prepare CORPUS DIR --partitions P --rate R --tick S
          --topic T --group G [--commit-topic snuba-commit-log]
      Splits CORPUS (produce_file lines of topic T, see relay_corpus.py) into
      one events file per tick (R*S messages each) and one commit-log file per
      tick that moves group G to the end of the *previous* tick's batch on
      every partition that received messages in it.  Everything is written
      before the run, so that the run itself only sends commands.
  relay_latency.py run DIR OUT.tsv
      Talks to test/kafka_mock/sr_kafka_mock on stdin (its answers) and stdout
      (its commands); run it with both redirected to the helper's pipes.  At
      each tick k (every S seconds, on a fixed schedule): produce the commit-log
      file of tick k (the writer commits batch k-1), then the events of batch
      k.  A final tick commits the last batch.  OUT.tsv gets one row per
      commit-log entry: tick, partition, lo, hi (the entry covers offsets
      lo <= o < hi), t_send (just before produce_file was sent), t_ack (its
      answer: delivered).
  relay_latency.py report OUT.tsv JOBS.tsv [--json OUT.json]
      JOBS.tsv: "partition offset commit_epoch" of every job (COPY of
      sentry_relay.jobs with pg_xact_commit_timestamp(xmin)).  For each entry,
      latency = the commit time of its last job - t_send.  Prints p50, p99,
      max; counts jobs committed before their entry was sent (must be 0: the
      gate).

Standard library only.
"""
import argparse
import json
import os
import sys
import time


def prepare(a):
    os.makedirs(a.dir, exist_ok=True)
    per_tick = max(1, int(round(a.rate * a.tick)))
    offsets = [0] * a.partitions
    prev_end = list(offsets)
    tick = 0
    meta = {"rate": a.rate, "tick": a.tick, "per_tick": per_tick, "partitions": a.partitions,
            "topic": a.topic, "group": a.group, "commit_topic": a.commit_topic,
            "ticks": 0, "messages": 0}

    def commit_file(k, lo, hi):
        with open(os.path.join(a.dir, "commit_%05d.txt" % k), "w") as f, \
                open(os.path.join(a.dir, "commit_%05d.ranges" % k), "w") as r:
            for p in range(a.partitions):
                if hi[p] > lo[p]:
                    key = ("%s:%d:%s" % (a.topic, p, a.group)).encode()
                    val = json.dumps({"offset": hi[p], "orig_message_ts": time.time(),
                                      "received_p99": None}).encode()
                    f.write("%s 0 %s %s\n" % (a.commit_topic, key.hex(), val.hex()))
                    r.write("%d %d %d\n" % (p, lo[p], hi[p]))

    out = None
    n = 0
    with open(a.corpus) as src:
        for line in src:
            if out is None:
                # tick k: commit batch k-1, then produce batch k
                commit_file(tick, prev_end, offsets) if tick > 0 else commit_file(0, offsets, offsets)
                prev_end = list(offsets)
                out = open(os.path.join(a.dir, "events_%05d.txt" % tick), "w")
            out.write(line)
            offsets[int(line.split(" ", 2)[1])] += 1
            n += 1
            if n % per_tick == 0:
                out.close()
                out = None
                tick += 1
    if out is not None:
        out.close()
        tick += 1
    commit_file(tick, prev_end, offsets)     # the final commit
    meta["ticks"] = tick
    meta["messages"] = n
    meta["end_offsets"] = offsets
    with open(os.path.join(a.dir, "meta.json"), "w") as f:
        json.dump(meta, f)
    print(json.dumps({k: meta[k] for k in ("ticks", "messages", "per_tick")}))


def run(a):
    meta = json.load(open(os.path.join(a.dir, "meta.json")))
    tick_s = meta["tick"]
    cmd_out = sys.stdout
    answers = sys.stdin

    def command(line):
        cmd_out.write(line + "\n")
        cmd_out.flush()
        reply = answers.readline()
        if not reply.startswith("OK"):
            sys.exit("relay_latency: %s -> %s" % (line, reply.strip()))
        return reply

    # Warm the helper's producer up on the commit-log topic (its first
    # produce to a topic waits for metadata, up to a second) with an entry
    # for a topic and group the stream does not follow, so that the first
    # measured entry does not carry that wait.
    warm = os.path.join(a.dir, "warmup.txt")
    with open(warm, "w") as f:
        key = ("%s:0:%s" % (meta["topic"] + "-warmup", meta["group"] + "-warmup")).encode()
        val = json.dumps({"offset": 0, "orig_message_ts": time.time(), "received_p99": None}).encode()
        f.write("%s 0 %s %s\n" % (meta["commit_topic"], key.hex(), val.hex()))
    command("produce_file " + warm)

    rows = []
    late = 0
    t0 = time.time() + 0.2
    for k in range(meta["ticks"] + 1):
        due = t0 + k * tick_s
        now = time.time()
        if now < due:
            time.sleep(due - now)      # pacing to the fixed schedule
        elif now - due > tick_s:
            late += 1
        cfile = os.path.join(a.dir, "commit_%05d.txt" % k)
        ranges = [tuple(map(int, l.split())) for l in open(os.path.join(a.dir, "commit_%05d.ranges" % k))]
        if ranges:
            t_send = time.time()
            command("produce_file " + cfile)
            t_ack = time.time()
            for p, lo, hi in ranges:
                rows.append((k, p, lo, hi, t_send, t_ack))
        efile = os.path.join(a.dir, "events_%05d.txt" % k)
        if k < meta["ticks"]:
            command("produce_file " + efile)
    elapsed = time.time() - t0
    with open(a.out, "w") as f:
        for r in rows:
            f.write("%d\t%d\t%d\t%d\t%.6f\t%.6f\n" % r)
    sys.stderr.write("relay_latency: %d messages in %d ticks, %.1f s (%.0f msg/s), %d ticks late\n"
                     % (meta["messages"], meta["ticks"], elapsed, meta["messages"] / elapsed, late))
    with open(a.out + ".json", "w") as f:
        json.dump({"elapsed": elapsed, "late_ticks": late, "messages": meta["messages"],
                   "achieved_rate": meta["messages"] / elapsed}, f)


def pct(v, q):
    if not v:
        return None
    return v[min(len(v) - 1, int(q * len(v)))]


def report(a):
    jobs = {}
    for line in open(a.jobs):
        p, o, t = line.split()
        jobs.setdefault(int(p), []).append((int(o), float(t)))
    for p in jobs:
        jobs[p].sort()
    import bisect
    lat = []
    early = 0
    ack = []
    for line in open(a.commits):
        k, p, lo, hi, t_send, t_ack = line.split("\t")
        p, lo, hi, t_send, t_ack = int(p), int(lo), int(hi), float(t_send), float(t_ack)
        js = jobs.get(p, [])
        i = bisect.bisect_left(js, (lo, -1.0))
        j = bisect.bisect_left(js, (hi, -1.0))
        if i == j:
            continue                    # only replacements or bad messages
        ts = [t for _, t in js[i:j]]
        if min(ts) < t_send:
            early += 1
        lat.append(max(ts) - t_send)
        ack.append(t_ack - t_send)
    lat.sort()
    ack.sort()
    res = {"entries": len(lat), "early_entries": early,
           "p50_ms": round(1000 * pct(lat, 0.5), 2) if lat else None,
           "p99_ms": round(1000 * pct(lat, 0.99), 2) if lat else None,
           "max_ms": round(1000 * lat[-1], 2) if lat else None,
           "mean_ms": round(1000 * sum(lat) / len(lat), 2) if lat else None,
           "produce_ack_p50_ms": round(1000 * pct(ack, 0.5), 2) if ack else None,
           "produce_ack_max_ms": round(1000 * ack[-1], 2) if ack else None}
    print(json.dumps(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("corpus")
    p.add_argument("dir")
    p.add_argument("--partitions", type=int, required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--tick", type=float, default=0.1)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--commit-topic", default="snuba-commit-log")
    r = sub.add_parser("run")
    r.add_argument("dir")
    r.add_argument("out")
    q = sub.add_parser("report")
    q.add_argument("commits")
    q.add_argument("jobs")
    q.add_argument("--json")
    a = ap.parse_args()
    {"prepare": prepare, "run": run, "report": report}[a.cmd](a)


if __name__ == "__main__":
    main()
