#!/usr/bin/python3
"""queue_report.py - summarize a queue_bench.sh run: parse the pgbench
outputs and per-transaction logs it lists in its manifest, write the
machine-readable summary (JSON) and print the human table."""
import argparse
import glob
import json
import os
import platform
import re
import statistics
import time

ARMS = [("claim_complete", "A  claim, then complete (2 tx)"),
        ("baseline", "B  baseline DELETE ... SKIP LOCKED"),
        ("claim_complete_1tx", "C  claim+complete in 1 statement")]
TARGET_JOBS_PER_S = 15000
TARGET_RATIO = 0.7
FLAT_FACTOR = 1.5


def machine():
    model = "unknown"
    mem_kb = 0
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {"nproc": os.cpu_count(), "cpu_model": model,
            "memory_gb": round(mem_kb / 1024 / 1024, 1), "kernel": platform.release(),
            "loadavg_at_end": os.getloadavg()}


def parse_pgbench(path):
    """tps, transactions, measured seconds and per-statement latencies (ms)."""
    text = open(path).read()
    r = {"file": os.path.basename(path)}
    m = re.search(r"number of transactions actually processed: (\d+)", text)
    r["transactions"] = int(m.group(1))
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", text)
    r["tps"] = float(m.group(1))
    r["seconds"] = r["transactions"] / r["tps"] if r["tps"] else 0.0
    m = re.search(r"number of failed transactions: (\d+)", text)
    r["failed"] = int(m.group(1)) if m else 0
    stmts = {}
    for line in text.split("statement latencies in milliseconds")[-1].splitlines()[1:]:
        m = re.match(r"\s+([\d.]+)\s+\d+\s+(\S.*)$", line)
        if not m or m.group(2).startswith("\\") or float(m.group(1)) == 0.0:
            continue
        sql = m.group(2)        # pgbench truncates long statements: look at their start
        kind = ("delete" if sql.startswith("DELETE") else
                "claim" if sql.startswith("SELECT coalesce(array_agg(id)") else
                "claim+complete" if sql.startswith("SELECT sentry_relay.complete_jobs(coalesce") else
                "complete" if sql.startswith("SELECT sentry_relay.complete_jobs(") else sql[:40])
        stmts[kind] = float(m.group(1))
    r["statement_latency_ms"] = stmts
    return r


def claim_latencies(logdir):
    """Claim latencies (ms) from pgbench --log files: a client's first,
    third, ... transaction is a claim (drain.sql alternates)."""
    per_client = {}
    for path in glob.glob(os.path.join(logdir, "pgbench_log.*")):
        with open(path) as f:
            for line in f:
                fields = line.split()
                client, txno, lat_us = int(fields[0]), int(fields[1]), float(fields[2])
                per_client.setdefault((path, client), []).append((txno, lat_us))
    lat = []
    for rows in per_client.values():
        first = min(t for t, _ in rows)
        lat.extend(us / 1000.0 for t, us in rows if (t - first) % 2 == 0)
    return sorted(lat)


def pct(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def main():
    ap = argparse.ArgumentParser()
    for opt in ("manifest", "json", "server-version", "settings"):
        ap.add_argument("--" + opt, required=True)
    ap.add_argument("--patch", default="")
    for opt in ("duration", "clients", "threads", "batch", "rows", "round-jobs", "tokens",
                "elapsed"):
        ap.add_argument("--" + opt, type=int, required=True)
    a = ap.parse_args()

    s1_runs, s2_rounds = [], []
    with open(a.manifest) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if fields[0] == "s1":
                _, arm, rep, jobs, leased, av, upd, hot, out = fields
                r = parse_pgbench(out)
                r.update(arm=arm, rep=int(rep), jobs=int(jobs), left_leased=int(leased),
                         autovacuums=int(av), claims_updated=int(upd), claims_hot=int(hot),
                         hot_fraction=int(hot) / int(upd) if int(upd) else None)
                r["jobs_per_s"] = r["jobs"] / r["seconds"] if r["seconds"] else 0.0
                s1_runs.append(r)
            elif fields[0] == "s2":
                _, _, rnd, jobs, left, out, logdir = fields
                r = parse_pgbench(out)
                lat = claim_latencies(logdir)
                r.update(round=int(rnd), jobs=int(jobs), left=int(left), claims=len(lat),
                         claim_avg_ms=statistics.fmean(lat) if lat else None,
                         claim_p50_ms=pct(lat, 50), claim_p99_ms=pct(lat, 99),
                         claim_max_ms=lat[-1] if lat else None)
                r["jobs_per_s"] = r["jobs"] / r["seconds"] if r["seconds"] else 0.0
                s2_rounds.append(r)

    out = {"generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": machine(),
           "server": {"version": a.server_version, "settings": a.settings},
           "config": {"clients": a.clients, "threads": a.threads, "batch": a.batch,
                      "duration_s": a.duration, "prefill_rows": a.rows,
                      "round_jobs": a.round_jobs,
                      "complete_with_lease_tokens": bool(a.tokens),
                      "patch": a.patch or None},
           "elapsed_s": a.elapsed}
    lines = []
    p = lines.append
    m = out["machine"]
    p("sentry_relay queue benchmark")
    p("machine: %d CPUs (%s), %.1f GB RAM, kernel %s, load at end %.2f %.2f %.2f"
      % (m["nproc"], m["cpu_model"], m["memory_gb"], m["kernel"], *m["loadavg_at_end"]))
    p("server:  PostgreSQL %s; %s" % (a.server_version, a.settings))
    p("clients: %d (pgbench -j %d -M prepared), batch %d, %d s per run"
      % (a.clients, a.threads, a.batch, a.duration))
    if a.patch:
        p("PATCHED: %s applied on top of the installed extension" % a.patch)
    if not a.tokens:
        p("WARNING: complete_jobs(ids, attempts) failed on this build; completions passed ids only")

    if s1_runs:
        arms = {}
        p("")
        p("scenario 1: throughput (tables topped up to %d ready jobs, vacuumed before each run;"
          % a.rows)
        p("            ms = pgbench -r average statement latency; av = autovacuums during the run;")
        p("            HOT = share of the claims' row updates that were HOT)")
        p("%-36s %4s %9s %8s %9s %9s %9s %4s %5s" % ("arm", "run", "jobs", "jobs/s", "claim ms",
                                                     "compl. ms", "stmt ms", "av", "HOT"))
        for key, label in ARMS:
            runs = [r for r in s1_runs if r["arm"] == key]
            if not runs:
                continue
            for r in runs:
                s = r["statement_latency_ms"]
                p("%-36s %4d %9d %8.0f %9s %9s %9s %4d %5s" % (
                    label, r["rep"], r["jobs"], r["jobs_per_s"],
                    "%.3f" % s["claim"] if "claim" in s else "",
                    "%.3f" % s["complete"] if "complete" in s else "",
                    "%.3f" % s.get("claim+complete", s.get("delete", 0))
                    if ("claim+complete" in s or "delete" in s) else "", r["autovacuums"],
                    "%.0f%%" % (100 * r["hot_fraction"]) if r["hot_fraction"] is not None else ""))
            mean = statistics.fmean(r["jobs_per_s"] for r in runs)
            arms[key] = {"label": label, "jobs_per_s": mean,
                         "jobs_per_s_runs": [r["jobs_per_s"] for r in runs]}
            p("%-36s %4s %9s %8.0f" % ("", "mean", "", mean))
        ratio = (arms["claim_complete"]["jobs_per_s"] / arms["baseline"]["jobs_per_s"]
                 if "claim_complete" in arms and "baseline" in arms else None)
        ratio_1tx = (arms["claim_complete_1tx"]["jobs_per_s"] / arms["baseline"]["jobs_per_s"]
                     if "claim_complete_1tx" in arms and "baseline" in arms else None)
        out["scenario1"] = {"runs": s1_runs, "arms": arms,
                            "ratio_claim_complete_to_baseline": ratio,
                            "ratio_claim_complete_1tx_to_baseline": ratio_1tx}
        p("")
        if ratio is not None:
            a_jps = arms["claim_complete"]["jobs_per_s"]
            t1 = a_jps >= TARGET_JOBS_PER_S
            t2 = ratio >= TARGET_RATIO
            p("claim+complete / baseline:        %.2f   (target >= %.2f: %s)"
              % (ratio, TARGET_RATIO, "MET" if t2 else "MISSED"))
            p("claim+complete jobs/s:            %.0f  (target >= %d: %s)"
              % (a_jps, TARGET_JOBS_PER_S, "MET" if t1 else "MISSED"))
            out["targets"] = {"jobs_per_s": {"target": TARGET_JOBS_PER_S, "value": a_jps, "met": t1},
                              "ratio_to_baseline": {"target": TARGET_RATIO, "value": ratio,
                                                    "met": t2}}
        if ratio_1tx is not None:
            p("claim+complete (1 stmt) / baseline: %.2f" % ratio_1tx)

    if s2_rounds:
        p("")
        p("scenario 2: claim latency while %d jobs go through the queue (%d per round)"
          % (sum(r["jobs"] for r in s2_rounds), a.round_jobs))
        p("%5s %10s %10s %8s %10s %10s %10s %10s" % ("round", "jobs", "jobs/s", "claims",
                                                    "avg ms", "p50 ms", "p99 ms", "max ms"))
        total = 0
        for r in s2_rounds:
            total += r["jobs"]
            r["jobs_through_queue"] = total
            p("%5d %10d %10.0f %8d %10.3f %10.3f %10.3f %10.3f" % (
                r["round"], r["jobs"], r["jobs_per_s"], r["claims"], r["claim_avg_ms"],
                r["claim_p50_ms"], r["claim_p99_ms"], r["claim_max_ms"]))
        first, last = s2_rounds[0], s2_rounds[-1]
        avg_ratio = last["claim_avg_ms"] / first["claim_avg_ms"]
        p99_ratio = last["claim_p99_ms"] / first["claim_p99_ms"]
        flat = avg_ratio <= FLAT_FACTOR
        p("last/first round claim latency: avg %.2fx, p99 %.2fx -> %s (informational: avg within %.1fx)"
          % (avg_ratio, p99_ratio, "PASS" if flat else "FAIL", FLAT_FACTOR))
        steady = None
        if len(s2_rounds) >= 3:
            # round 1 runs on a freshly truncated table: from round 2 on, the
            # table carries the dead space that churn leaves
            avgs = [r["claim_avg_ms"] for r in s2_rounds[1:]]
            steady = max(avgs) / min(avgs)
            p("rounds 2..%d (after the first round's churn): avg claim latency max/min %.2fx"
              % (len(s2_rounds), steady))
        out["scenario2"] = {"rounds": s2_rounds, "last_to_first_avg": avg_ratio,
                            "rounds_2_to_last_max_over_min_avg": steady,
                            "last_to_first_p99": p99_ratio, "flat_factor": FLAT_FACTOR,
                            "flat": flat, "left_in_queue": last["left"]}
    p("")
    p("total time %d s; summary in %s" % (a.elapsed, a.json))

    with open(a.json, "w") as f:
        json.dump(out, f, indent=2, sort_keys=True)
        f.write("\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
