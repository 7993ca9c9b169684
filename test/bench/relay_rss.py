#!/usr/bin/python3
"""relay_rss.py - sample a process's memory for the relay benchmark
(scenario E).

  relay_rss.py PID OUT.json [--interval 0.02] [--stop FILE] [--reset]
      Every INTERVAL seconds, reads /proc/PID/status (VmRSS, RssAnon, RssFile,
      RssShmem, VmHWM) until FILE exists or PID exits.  --reset first writes 5
      to /proc/PID/clear_refs, which resets VmHWM (the kernel's peak RSS), so
      the peak is this phase's.  Writes the peaks (kB) and the number of
      samples to OUT.json, and the samples to OUT.json.csv.
      "private" = RssAnon + RssFile: the process's own memory, without the
      pages of PostgreSQL's shared memory (shared_buffers) it has touched,
      which VmRSS and VmHWM count too.

Standard library only.
"""
import argparse
import json
import os
import time

FIELDS = ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM")


def read(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in FIELDS:
                out[k] = int(v.split()[0])
    out["private"] = out.get("RssAnon", 0) + out.get("RssFile", 0)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pid", type=int)
    ap.add_argument("out")
    ap.add_argument("--interval", type=float, default=0.02)
    ap.add_argument("--stop")
    ap.add_argument("--reset", action="store_true")
    a = ap.parse_args()
    if a.reset:
        try:
            with open("/proc/%d/clear_refs" % a.pid, "w") as f:
                f.write("5")
        except OSError:
            pass
    peak = {}
    n = 0
    last = {}
    t0 = time.time()
    with open(a.out + ".csv", "w") as csv:
        csv.write("t," + ",".join(FIELDS) + ",private\n")
        while True:
            try:
                s = read(a.pid)
            except OSError:
                break
            last = s
            n += 1
            for k, v in s.items():
                peak[k] = max(peak.get(k, 0), v)
            csv.write("%.3f,%s,%d\n" % (time.time() - t0, ",".join(str(s.get(k, 0)) for k in FIELDS),
                                        s["private"]))
            if a.stop and os.path.exists(a.stop):
                break
            time.sleep(a.interval)   # the sampling period
    with open(a.out, "w") as f:
        json.dump({"samples": n, "peak_kb": peak, "last_kb": last, "seconds": time.time() - t0}, f)


if __name__ == "__main__":
    main()
