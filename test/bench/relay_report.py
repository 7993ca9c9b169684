#!/usr/bin/python3
"""relay_report.py - the relay benchmark's report (test/bench/relay_bench.sh).

Reads the runs (one JSON object per line, written by relay_bench.sh) and the
raw files (corpus summaries, RSS samples, latencies, profile), prints a human
table, writes the machine-readable summary (--json) and the data files the
gnuplot script (relay_plot.gp) draws, into --plots.

Standard library only.
"""
import argparse
import datetime
import json
import os
import platform
import statistics


def load_runs(path):
    runs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(json.loads(line))
    return runs


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def mem_gb():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 1048576, 1)
    except OSError:
        return None


def rd(raw, name):
    p = os.path.join(raw, name)
    if os.path.exists(p):
        with open(p) as f:
            return json.load(f)
    return None


def mb(kb):
    return None if kb is None else round(kb / 1024, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs")
    ap.add_argument("--raw")
    ap.add_argument("--json")
    ap.add_argument("--plots")
    ap.add_argument("--broker", default="mock")
    ap.add_argument("--compare", nargs="*", help="BROKER=relay.json ...: the side-by-side table")
    ap.add_argument("--quick", default="0")
    ap.add_argument("--server-version", default="")
    ap.add_argument("--settings", default="")
    ap.add_argument("--elapsed", type=int, default=0)
    a = ap.parse_args()
    if a.compare:
        return compare(a)
    runs = load_runs(a.runs)
    out = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "quick": a.quick == "1",
           "machine": {"cpus": os.cpu_count(), "cpu": cpu_model(), "memory_gb": mem_gb(),
                       "load_avg_at_end": os.getloadavg(), "kernel": platform.release()},
           "broker": a.broker, "server_version": a.server_version, "settings": a.settings, "elapsed_s": a.elapsed,
           "corpus": {}, "scenarios": {}, "targets": []}
    for name in sorted(os.listdir(a.raw)):
        if name.startswith("corpus_") and name.endswith(".json"):
            c = rd(a.raw, name)
            c.pop("per_partition", None)
            out["corpus"][name[7:-5]] = c
    lines = []
    p = lines.append
    p("sentry_relay relay benchmark, broker %s, %s%s" % ({"mock": "librdkafka's mock cluster", "real": "Apache Kafka (1 node, KRaft)"}.get(a.broker, a.broker), out["date"], " (QUICK mode: small counts)" if out["quick"] else ""))
    p("machine: %d CPUs (%s), %s GB; PostgreSQL %s; load average at the end %.1f"
      % (out["machine"]["cpus"], out["machine"]["cpu"], out["machine"]["memory_gb"], a.server_version,
         out["machine"]["load_avg_at_end"][0]))
    p("settings: " + a.settings)
    if "a" in out["corpus"]:
        c = out["corpus"]["a"]
        s = c["insert_size"]
        p("corpus A/B: %d messages over %d partitions (%d inserts, %d replacements, %d bad); "
          "insert size median %d B, p99 %d B, max %d B, mean %d B; %.0f MB"
          % (c["messages"], c["partitions"], c["jobs"], c["replacements"], c["bad"],
             s["median"], s["p99"], s["max"], s["mean"], c["bytes"] / 1e6))
    p("")

    # --- C -------------------------------------------------------------------
    copies = [r for r in runs if r["scenario"] == "C"]
    c_rate = None
    if copies:
        rates = [r["rows"] / r["seconds"] for r in copies]
        c_rate = statistics.median(rates)
        out["scenarios"]["C"] = {"runs": [{"rows": r["rows"], "seconds": round(r["seconds"], 4),
                                           "rows_per_s": round(r["rows"] / r["seconds"])} for r in copies],
                                 "rows_per_s_median": round(c_rate)}

    # --- A, B ----------------------------------------------------------------
    def median_runs(rows, key):
        """Runs repeated with the same `key` value: the median run of each
        (by msgs/s), with every run's msgs/s and whether all were correct."""
        out_rows = []
        for v in sorted(set(d[key] for d in rows)):
            reps = sorted((d for d in rows if d[key] == v), key=lambda d: d["msgs_per_s"])
            med = dict(reps[len(reps) // 2])
            med["reps"] = len(reps)
            med["runs_msgs_per_s"] = [d["msgs_per_s"] for d in reps]
            med["correct"] = all(d["correct"] for d in reps)
            out_rows.append(med)
        return out_rows

    def drain_rows(scen):
        rows = []
        for r in runs:
            if r["scenario"] != scen:
                continue
            sec = r["seconds"]
            if r["messages"] <= 0 or sec <= 0:
                raise SystemExit("run %s timed %d messages in %s s: not a measurement" % (r["name"], r["messages"], sec))
            d = {"name": r["name"], "workers": r["workers"], "partitions": r["partitions"],
                 "messages": r["messages"], "jobs": r["jobs"], "seconds": round(sec, 4),
                 "msgs_per_s": round(r["messages"] / sec), "jobs_per_s": round(r["jobs"] / sec),
                 "batches": r.get("batches"), "worker_cpu_s": r.get("worker_cpu_s"),
                 "worker_cpu_share": round(r["worker_cpu_s"] / sec / r["workers"], 2) if r.get("worker_cpu_s") is not None else None,
                 # what one busy worker could do: messages per second of worker CPU
                 "msgs_per_worker_cpu_s": round(r["messages"] / r["worker_cpu_s"]) if r.get("worker_cpu_s") else None,
                 # from the clock's start (see drain_run) to the first commit of jobs
                 "first_commit_ms": round((r["t_first"] - r["t0"]) * 1000, 1) if r.get("t_first") else None,
                 "mode": r.get("mode", "gate"),
                 "correct": r["jobs"] == r["expected_jobs"] and r["dead_letters"] == r["expected_dead"]}
            if c_rate:
                d["ratio_to_copy"] = round(d["jobs_per_s"] / c_rate, 3)
            rows.append(d)
        return rows

    # --- PA, PB: the Python peer (python_forwarder.py, one process) ----------
    # its median run per scenario; A's and B's rows get their ratio to it
    py = {}
    for scen in ("PA", "PB"):
        rows = median_runs(drain_rows(scen), "workers")
        if rows:
            d = rows[0]
            d["python"] = [r["python"] for r in runs if r["scenario"] == scen and r["name"] == d["name"]][0]
            py[scen] = d
    checks = [r for r in runs if r["scenario"] == "PC"]
    if checks:
        out["scenarios"]["PC"] = checks

    p("%-34s %8s %9s %10s %10s %9s %8s %6s %10s %8s %7s" % ("A/B/C: drain throughput", "workers", "seconds",
                                                          "msgs/s", "jobs/s", "x COPY", "correct", "busy",
                                                          "msgs/CPU-s", "1st ms", "x Py"))
    for scen, label, peer in (("A", "A body decoding", "PA"), ("B", "B header decoding", "PB"),
                              ("PA", "PA Python peer, body", None), ("PB", "PB Python peer, headers", None)):
        # each worker count may run several times (BENCH_AB_REPS): the median run stands
        rows = [py[scen]] if scen in py else median_runs(drain_rows(scen), "workers") if peer else []
        if peer in py:
            for d in rows:
                # like for like: the same corpus and clock, so jobs/s over jobs/s
                # is also msgs/s over msgs/s
                d["ratio_to_python"] = round(d["jobs_per_s"] / py[peer]["jobs_per_s"], 2)
        if rows:
            out["scenarios"][scen] = rows[0] if scen in py else rows
        for d in rows:
            p("%-34s %8s %9.3f %10d %10d %9s %8s %6s" % (label, d["workers"] if peer else "1 proc",
                                                         d["seconds"], d["msgs_per_s"],
                                                         d["jobs_per_s"], d.get("ratio_to_copy", "-"),
                                                         "yes" if d["correct"] else "NO",
                                                         "%d%%" % (100 * d["worker_cpu_share"])
                                                         if d["worker_cpu_share"] is not None else "-")
              + " %10s" % (d["msgs_per_worker_cpu_s"] or "-")
              + " %8s" % (d["first_commit_ms"] if d["first_commit_ms"] is not None else "-")
              + " %7s" % (d.get("ratio_to_python", "-"))
              + ("   median of %d: %s msg/s" % (d["reps"], " / ".join(str(x) for x in d["runs_msgs_per_s"]))
                 if d["reps"] > 1 else ""))
    A_on = {d["workers"]: d for d in out["scenarios"].get("A", [])}
    anw = median_runs(drain_rows("A_nowake"), "workers")
    if anw:
        out["scenarios"]["A_nowake"] = anw
        for d in anw:
            if d["workers"] in A_on:
                d["ratio_to_wakeup_on"] = round(d["msgs_per_s"] / A_on[d["workers"]]["msgs_per_s"], 3)
            p("%-34s %8s %9.3f %10d %10d %9s %8s %6s" % ("A, fetch_wakeup off", d["workers"], d["seconds"],
                                                         d["msgs_per_s"], d["jobs_per_s"], d.get("ratio_to_copy", "-"),
                                                         "yes" if d["correct"] else "NO",
                                                         "%d%%" % (100 * d["worker_cpu_share"]))
              + " %10s" % (d["msgs_per_worker_cpu_s"] or "-") + " %8s" % d["first_commit_ms"] + " %7s" % "-"
              + "   off/on %s; median of %d: %s msg/s" % (d.get("ratio_to_wakeup_on", "-"), d["reps"],
                                                         " / ".join(str(x) for x in d["runs_msgs_per_s"])))
    if copies:
        for r in out["scenarios"]["C"]["runs"]:
            p("%-34s %8s %9.3f %10s %10d" % ("C COPY of the same rows", "-", r["seconds"], "-", r["rows_per_s"]))
        p("%-34s %8s %9s %10s %10d" % ("C median", "", "", "", c_rate))
    prof = [r for r in runs if r["scenario"] == "P"]
    if prof:
        r = prof[0]
        p("%-34s %8d %9.3f %10d %10d   (under perf: not a measurement)"
          % ("profiled run of " + ("B" if r["name"].startswith("b_") else "A"), r["workers"], r["seconds"], r["messages"] / r["seconds"], r["jobs"] / r["seconds"]))
    p("  (busy: the workers' CPU time / (elapsed time x workers); msgs/CPU-s: messages per second of worker CPU,")
    p("   what a worker that never waited for Kafka would do; 1st ms: from the commit-log produce to the first")
    p("   commit of jobs)")
    if py:
        d = next(iter(py.values()))["python"]
        p("  (PA/PB: test/bench/python_forwarder.py, one Python process: Sentry's SynchronizedConsumer (commit-log")
        p("   thread, pause/resume gate), protocol.py decoding (headers first), batches of up to %d messages COPYed"
          % d["batch_size"])
        p("   by a writer thread (%d batch queued ahead), then Kafka offsets committed (at-least-once); timed as A/B."
          % d["pipeline"])
        p("   busy: its CPU (all threads) / elapsed.  x Py: A's or B's jobs/s / the peer's jobs/s (= msgs/s ratio).")
        p("   The relay's workers had read ahead into their hold before the clock started; the peer had not.)")
    for c in checks:
        p("  Python peer check, %s: %s (%d jobs, %d below the gate and none past it; %d pauses, %d seeks back)%s"
          % (c["name"][6:], "passed" if c["passed"] else "FAILED", c["jobs"], c["gate_rows"], c["pauses"],
             c["seeks"], "" if c["passed"] else ": " + "; ".join(c["failed"])))
    p("")

    # --- D -------------------------------------------------------------------
    ds = [r for r in runs if r["scenario"] == "D"]
    for d in ds:
        if d["name"] == "d":
            out["scenarios"]["D"] = d
        else:
            out["scenarios"]["D_" + d["name"]] = d
        lat = d["latency"]
        p("D latency at %d msg/s (%d partitions, %d worker(s), %s; achieved %.0f msg/s, %d late ticks), stream %s, fetch_wakeup %s, %s:"
          % (d["rate"], d["partitions"], d["workers"], "headers" if d["headers"] else "body decoding",
             d["driver"]["achieved_rate"], d["driver"]["late_ticks"], d["name"], d.get("fetch_wakeup", "on"),
             ("Kafka properties " + d["kafka_opts"]) if d.get("kafka_opts") else "the relay's default Kafka properties"))
        p("  commit-log entry produced -> its last job committed: p50 %s ms, p99 %s ms, max %s ms, mean %s ms "
          "(%d entries; %d with a job committed before the entry was sent)"
          % (lat["p50_ms"], lat["p99_ms"], lat["max_ms"], lat["mean_ms"], lat["entries"], lat["early_entries"]))
        p("  (the helper's own produce of the entry, send to ack: p50 %s ms, max %s ms)"
          % (lat["produce_ack_p50_ms"], lat["produce_ack_max_ms"]))
        p("")

    # --- E -------------------------------------------------------------------
    steps = [r for r in runs if r["scenario"] == "E" and r["name"] == "e_step"]
    if steps:
        e = {"backlog_steps": [], "phases": {}}
        p("E worker memory (MB); private = RssAnon + RssFile; VmRSS/VmHWM also count touched shared_buffers")
        p("  %-36s %10s %10s %10s" % ("backlog behind a stalled commit log", "private", "VmRSS", "RssShmem"))
        for r in steps:
            rs = r["rss"]
            priv = rs.get("RssAnon", 0) + rs.get("RssFile", 0)
            e["backlog_steps"].append({"backlog": r["backlog"], "private_mb": mb(priv), "vmrss_mb": mb(rs.get("VmRSS")),
                                       "rssanon_mb": mb(rs.get("RssAnon")), "rssshmem_mb": mb(rs.get("RssShmem"))})
            p("  %-36d %10.1f %10.1f %10.1f" % (r["backlog"], priv / 1024, rs.get("VmRSS", 0) / 1024,
                                                rs.get("RssShmem", 0) / 1024))
        for phase, label in (("e_backlog", "while the backlog grew"), ("e_drain", "draining the backlog"),
                             ("e_big", "5 MB messages in the mix, draining")):
            s = rd(a.raw, "rss_%s.json" % phase)
            if not s:
                continue
            pk = s["peak_kb"]
            e["phases"][phase] = {"samples": s["samples"], "peak_private_mb": mb(pk.get("private")),
                                  "peak_rssanon_mb": mb(pk.get("RssAnon")), "peak_vmhwm_mb": mb(pk.get("VmHWM")),
                                  "peak_rssshmem_mb": mb(pk.get("RssShmem"))}
            p("  peak %-31s private %.1f, RssAnon %.1f, VmHWM %.1f (of which shared memory up to %.1f), %d samples"
              % (label, pk.get("private", 0) / 1024, pk.get("RssAnon", 0) / 1024, pk.get("VmHWM", 0) / 1024,
                 pk.get("RssShmem", 0) / 1024, s["samples"]))
        dr = [r for r in runs if r["scenario"] == "E" and r["name"] == "e_drain"]
        if dr:
            e["drain"] = {"messages": dr[0]["messages"], "seconds": round(dr[0]["seconds"], 3),
                          "msgs_per_s": round(dr[0]["messages"] / dr[0]["seconds"])}
            p("  drain of %d small messages: %.1f s, %d msg/s" % (dr[0]["messages"], dr[0]["seconds"],
                                                               e["drain"]["msgs_per_s"]))
        big = [r for r in runs if r["scenario"] == "E" and r["name"] == "e_big"]
        if big:
            e["big"] = big[0]
            p("  big-message topic: %d jobs of %d expected (%d messages of %d bytes)"
              % (big[0]["jobs"], big[0]["expected_jobs"], out["corpus"].get("ebig", {}).get("big", 0),
                 big[0]["big_bytes"]))
        privs = [s["private_mb"] for s in e["backlog_steps"]]
        e["backlog_private_growth_mb"] = round(max(privs) - min(privs), 1)
        out["scenarios"]["E"] = e
        p("")

    # --- F -------------------------------------------------------------------
    # F_parts: repeated runs per partition count; keep the median of each
    fp = median_runs(drain_rows("F_parts"), "partitions")
    fs = drain_rows("F_size")
    if fp or fs:
        out["scenarios"]["F"] = {"partitions": fp, "size": fs}
        p("%-34s %10s %9s %10s %10s %8s" % ("F scaling", "mean size", "seconds", "msgs/s", "MB/s", "correct"))
        if any(d["mode"] == "restart" for d in fp + fs):
            p("  (each stream relayed its partitions' first messages and stopped; then the writer committed the rest")
            p("   and the stream started again: timed from its assignment, the first messages not counted)")
        for d in fp:
            c = out["corpus"].get("fp%d" % d["partitions"], {})
            d["mean_bytes"] = int(c.get("bytes", 0) / max(1, c.get("messages", 1)))
            d["mb_per_s"] = round(d["mean_bytes"] * d["messages"] / 1e6 / d["seconds"], 1)  # messages timed
            p("%-34s %10d %9.3f %10d %10.1f %8s  (median of %s msg/s)"
              % ("%d partition(s), %d worker(s)" % (d["partitions"], d["workers"]),
                 d["mean_bytes"], d["seconds"], d["msgs_per_s"], d["mb_per_s"],
                 "yes" if d["correct"] else "NO", ", ".join(str(x) for x in d["runs_msgs_per_s"])))
        for d in fs:
            nominal = int(d["name"].split("_s")[1])
            c = out["corpus"].get("fs%d" % nominal, {})
            d["nominal_bytes"] = nominal
            d["mean_bytes"] = int(c.get("bytes", 0) / max(1, c.get("messages", 1)))
            d["mb_per_s"] = round(d["mean_bytes"] * d["messages"] / 1e6 / d["seconds"], 1)  # messages timed
            p("%-34s %10d %9.3f %10d %10.1f %8s" % ("size %s KB, %d partitions" % (nominal / 1024, d["partitions"]),
                                                    d["mean_bytes"], d["seconds"], d["msgs_per_s"], d["mb_per_s"],
                                                    "yes" if d["correct"] else "NO"))
        p("")

    # --- targets -------------------------------------------------------------
    T = out["targets"]

    def target(name, want, got, ok):
        T.append({"target": name, "want": want, "measured": got, "met": ok})

    A = {d["workers"]: d for d in out["scenarios"].get("A", [])}
    B = {d["workers"]: d for d in out["scenarios"].get("B", [])}
    if 2 in A and c_rate:
        target("A, 2 workers, vs COPY", ">= 0.5x", A[2]["ratio_to_copy"], A[2]["ratio_to_copy"] >= 0.5)
    if 2 in A:
        target("A, 2 workers, msgs/s", ">= 50000", A[2]["msgs_per_s"], A[2]["msgs_per_s"] >= 50000)
    if 1 in B and c_rate:
        target("B, 1 worker, vs COPY", ">= 0.8x", B[1]["ratio_to_copy"], B[1]["ratio_to_copy"] >= 0.8)
    # the peer is one process: like for like, 1 worker
    for scen, rows in (("A", A), ("B", B)):
        if 1 in rows and "ratio_to_python" in rows[1]:
            target("%s, 1 worker, vs the Python peer" % scen, ">= 5x", rows[1]["ratio_to_python"],
                   rows[1]["ratio_to_python"] >= 5)
    for c in checks:
        target("Python peer check (%s)" % c["name"][6:], "passed", "passed" if c["passed"] else "FAILED", c["passed"])
    # the target is with the relay's default settings (issue #16): d_default
    if "D_d_default" in out["scenarios"]:
        lat = out["scenarios"]["D_d_default"]["latency"]
        if lat["p99_ms"] is not None:
            target("D p99, the relay's defaults", "<= 20 ms", lat["p99_ms"], lat["p99_ms"] <= 20)
            target("D max, the relay's defaults", "<= 100 ms", lat["max_ms"], lat["max_ms"] <= 100)
    if "E" in out["scenarios"]:
        ph = out["scenarios"]["E"]["phases"]
        worst = max([ph[k]["peak_private_mb"] for k in ("e_backlog", "e_drain") if k in ph] or [0])
        target("E peak private RSS, small-message backlog", "<= 64 MB", worst, worst <= 64)
        if "e_big" in ph:
            big = out["scenarios"]["E"].get("big", {}).get("big_bytes", 5000000)
            lim = 64 + 2 * big / 1048576
            target("E peak private RSS, big messages", "<= %.0f MB" % lim, ph["e_big"]["peak_private_mb"],
                   ph["e_big"]["peak_private_mb"] <= lim)
    for scen, rows in (("A", A), ("B", B)):
        if 1 in rows and 2 in rows:
            sp = round(rows[2]["msgs_per_s"] / rows[1]["msgs_per_s"], 2)
            target("F: %s scales 1 -> 2 workers" % scen, "~2x (cores: %d)" % os.cpu_count(), sp, sp >= 1.6)
    if fp:
        rates = [d["msgs_per_s"] for d in fp]
        drop = round(min(rates) / max(rates), 2)
        target("F: no cliff with partitions (min/max)", ">= 0.5", drop, drop >= 0.5)
    if T:
        p("%-44s %-18s %12s %5s" % ("target (issues #5, #16), broker " + a.broker, "wanted", "measured", "met"))
        for t in T:
            p("%-44s %-18s %12s %5s" % (t["target"], t["want"], t["measured"], "yes" if t["met"] else "NO"))
        p("")
    perf = os.path.join(a.raw, "relay_perf.txt")
    if os.path.exists(perf):
        out["profile_file"] = "relay_raw/relay_perf.txt"
        which = "B" if any(r["scenario"] == "P" and r["name"].startswith("b_") for r in runs) else "A"
        p("profile of the worker (scenario %s, 1 worker): %s" % (which, perf))
    p("total time %d s" % a.elapsed)

    # --- plot data -----------------------------------------------------------
    with open(os.path.join(a.plots, "relay_workers.dat"), "w") as f:
        f.write("# workers A_msgs_per_s B_msgs_per_s C_rows_per_s A_jobs_per_s B_jobs_per_s\n")
        for w in sorted(set(A) | set(B)):
            f.write("%d %s %s %s %s %s\n" % (w, A.get(w, {}).get("msgs_per_s", "NaN"),
                                             B.get(w, {}).get("msgs_per_s", "NaN"),
                                             round(c_rate) if c_rate else "NaN",
                                             A.get(w, {}).get("jobs_per_s", "NaN"),
                                             B.get(w, {}).get("jobs_per_s", "NaN")))
    with open(os.path.join(a.plots, "relay_msgsize.dat"), "w") as f:
        f.write("# nominal_kb mean_bytes msgs_per_s mb_per_s\n")
        for d in fs:
            f.write("%g %d %d %s\n" % (d["nominal_bytes"] / 1024, d["mean_bytes"], d["msgs_per_s"], d["mb_per_s"]))
    with open(os.path.join(a.plots, "relay_partitions.dat"), "w") as f:
        f.write("# partitions msgs_per_s\n")
        for d in fp:
            f.write("%d %d\n" % (d["partitions"], d["msgs_per_s"]))

    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
    print("\n".join(lines))


def compare(a):
    """The side-by-side table of the per-broker runs (relay.json of each)."""
    res = []
    for arg in a.compare:
        b, _, path = arg.partition("=")
        with open(path) as f:
            res.append((b, json.load(f)))
    names = [b for b, _ in res]
    lines = []
    p = lines.append
    p("sentry_relay relay benchmark, both brokers side by side (%s)" % ", ".join(
        "%s %s" % (b, r["date"]) for b, r in res))
    p("%-46s" % "" + "".join("%22s" % b for b in names))

    def row(label, f):
        vals = []
        for _, r in res:
            try:
                v = f(r["scenarios"])
            except (KeyError, IndexError, TypeError, ZeroDivisionError):
                v = None
            vals.append("-" if v is None else str(v))
        p("%-46s" % label + "".join("%22s" % v for v in vals))

    def by_w(sc, scen, w):
        return [d for d in sc[scen] if d["workers"] == w][0]
    row("C COPY, rows/s (median)", lambda s: s["C"]["rows_per_s_median"])
    for scen, label in (("A", "A body"), ("B", "B headers")):
        for w in (1, 2, 4):
            row("%s, %d worker(s): msgs/s" % (label, w), lambda s, w=w, scen=scen: by_w(s, scen, w)["msgs_per_s"])
            row("  x COPY (jobs/s / rows/s)", lambda s, w=w, scen=scen: by_w(s, scen, w)["ratio_to_copy"])
            row("  x the Python peer (jobs/s)", lambda s, w=w, scen=scen: by_w(s, scen, w)["ratio_to_python"])
    row("PA Python peer, body: msgs/s", lambda s: s["PA"]["msgs_per_s"])
    row("PB Python peer, headers: msgs/s", lambda s: s["PB"]["msgs_per_s"])
    for w in (1, 2, 4):
        row("A fetch_wakeup off, %d worker(s): msgs/s" % w, lambda s, w=w: by_w(s, "A_nowake", w)["msgs_per_s"])
        row("  off / on", lambda s, w=w: by_w(s, "A_nowake", w)["ratio_to_wakeup_on"])
    for name, label in (("D", "D, fetch.wait.max.ms 5 (mock only)"), ("D_d_default", "D, the relay's defaults"),
                        ("D_d_default_nowake", "D, defaults, fetch_wakeup off")):
        row(label + ": p50/p99/max ms", lambda s, name=name: "%s/%s/%s" % (
            s[name]["latency"]["p50_ms"], s[name]["latency"]["p99_ms"], s[name]["latency"]["max_ms"]))
    row("E peak private RSS, backlog/drain MB", lambda s: "%s/%s" % (
        s["E"]["phases"]["e_backlog"]["peak_private_mb"], s["E"]["phases"]["e_drain"]["peak_private_mb"]))
    row("E peak private RSS, big messages MB", lambda s: s["E"]["phases"]["e_big"]["peak_private_mb"])
    row("E drain of the backlog, msgs/s", lambda s: s["E"]["drain"]["msgs_per_s"])
    p("")
    p("targets (met / missed):")
    tnames = []
    for _, r in res:
        for t in r["targets"]:
            if t["target"] not in tnames:
                tnames.append(t["target"])
    for t in tnames:
        vals = []
        for _, r in res:
            m = [x for x in r["targets"] if x["target"] == t]
            vals.append("%s %s" % (m[0]["measured"], "met" if m[0]["met"] else "MISSED") if m else "-")
        want = [x["want"] for _, r in res for x in r["targets"] if x["target"] == t][0]
        p("%-52s" % ("%s (%s)" % (t, want)) + "".join("%22s" % v for v in vals))
    p("total time of the run %d s" % a.elapsed)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
