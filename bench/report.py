#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Renders one bench/run.sh result directory as a markdown table: bench/report.py DIR

Reads DIR/cells.tsv (one row per measured wrk cell), DIR/idle.tsv (one row per idle-memory
test) and DIR/skipped.tsv (targets that did not run, and why). Medians over the repetitions,
with min-max for req/s; ratios are taken against HAProxy measured in the same run, since figures
from different runs on this machine do not compare (see shared/BENCHMARKING.md).
"""
import csv
import statistics
import sys

CPU0_BUSY = 90.0  # % of cpu0 (wrk + origins) above which the client side is the bottleneck
OTHER_BUSY = 10.0  # % of CPU used by processes not ours above which a cell was disturbed


def read_tsv(path):
    try:
        with open(path, newline="") as f:
            lines = [l for l in f if not l.startswith("#")]
    except FileNotFoundError:
        return []
    return list(csv.DictReader(lines, delimiter="\t"))


def k(v):
    return f"{v / 1000:.1f}k"


def lat(us):
    return f"{us:.0f} µs" if us < 1000 else f"{us / 1000:.2f} ms"


def num(row, key):
    v = row.get(key, "")
    return float(v) if v not in ("", "-") else None


def main():
    run = sys.argv[1]
    all_cells = read_tsv(f"{run}/cells.tsv")
    cells = [r for r in all_cells if r.get("kept", "1") == "1"]
    redone = len(all_cells) - len(cells)
    idle = {r["target"]: r for r in read_tsv(f"{run}/idle.tsv")}
    skipped = {r["target"]: r["reason"] for r in read_tsv(f"{run}/skipped.tsv")}
    order = []
    for r in cells:
        if r["target"] not in order:
            order.append(r["target"])

    stats = {}
    for t in order:
        rows = [r for r in cells if r["target"] == t]
        rps = [num(r, "req_s") for r in rows]
        cpu = [num(r, "proxy_cpu_pct") for r in rows]
        per_cpu = [q / (c / 100) for q, c in zip(rps, cpu) if c]
        stats[t] = {
            "rps": statistics.median(rps), "min": min(rps), "max": max(rps),
            "p50": statistics.median(num(r, "p50_us") for r in rows),
            "p99": statistics.median(num(r, "p99_us") for r in rows),
            "cpu": statistics.median(cpu) if all(c is not None for c in cpu) else None,
            "per_cpu": statistics.median(per_cpu) if per_cpu and len(per_cpu) == len(rows) else None,
            "cpu0": statistics.median(num(r, "origin_cpu_pct") + num(r, "wrk_cpu_pct")
                                      for r in rows),
            "busy": sum(1 for r in rows
                        if num(r, "origin_cpu_pct") + num(r, "wrk_cpu_pct") >= CPU0_BUSY),
            "other": statistics.median(num(r, "other_cpu_pct") for r in rows),
            "other_max": max(num(r, "other_cpu_pct") for r in rows),
            "errors": sum(int(r["non2xx"]) + int(r["sock_errors"]) for r in rows),
            "n": len(rows),
        }
    ref = stats.get("haproxy")

    out = ["| target | req/s median (min–max) | p50 | p99 | proxy CPU | req per proxy-CPU-s "
           "| vs HAProxy req/s | vs HAProxy per CPU | cpu0 (origins + wrk) | other CPU "
           "| RSS per idle conn | errors |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in order:
        s = stats[t]
        cpu = f"{s['cpu']:.0f}%" if s["cpu"] is not None else "—"
        per_cpu = k(s["per_cpu"]) if s["per_cpu"] is not None else "—"
        vs_rps = f"{s['rps'] / ref['rps']:.2f}" if ref else "—"
        vs_cpu = (f"{s['per_cpu'] / ref['per_cpu']:.2f}"
                  if ref and ref["per_cpu"] and s["per_cpu"] is not None else "—")
        i = idle.get(t)
        if i is None:
            rss = "—"
        elif int(i["ok"]) == 0:
            rss = "failed"
        else:
            rss = f"{float(i['bytes_per_conn']) / 1024:.2f} KiB"
            if int(i["failed"]) or int(i["closed_early"]):
                rss += f" ({i['failed']} failed, {i['closed_early']} closed)"
        out.append(f"| {t} | {k(s['rps'])} ({k(s['min'])}–{k(s['max'])}) | {lat(s['p50'])} "
                   f"| {lat(s['p99'])} | {cpu} | {per_cpu} | {vs_rps} | {vs_cpu} "
                   f"| {s['cpu0']:.0f}% | {s['other']:.0f}% | {rss} | {s['errors']} |")
    for t, why in skipped.items():
        if t not in stats:
            out.append(f"| {t} | skipped: {why} | | | | | | | | | | |")

    notes = []
    busy = [t for t in order if stats[t]["busy"] and t != "direct"]
    client_bound = [t for t in busy if stats[t]["cpu"] is not None and stats[t]["cpu"] < CPU0_BUSY]
    both = [t for t in busy if t not in client_bound]
    if client_bound:
        notes.append(
            f"{', '.join(client_bound)}: cpu0 (wrk + origins) was at least {CPU0_BUSY:.0f}% busy "
            "while the proxy was not: the client side limited req/s, so compare by req per "
            "proxy-CPU-second.")
    if both:
        notes.append(
            f"{', '.join(both)}: the proxy's CPU and cpu0 (wrk + origins) were both near "
            "saturation: req/s is close to what this client setup can drive, and req per "
            "proxy-CPU-second is the fairer comparison.")
    disturbed = [t for t in order if stats[t]["other_max"] >= OTHER_BUSY]
    if disturbed:
        worst = max(stats[t]["other_max"] for t in disturbed)
        notes.append(
            f"other CPU = CPU used during a cell by processes that are not part of the benchmark "
            f"(other sessions on this shared machine). It reached {worst:.0f}% in cells of "
            f"{', '.join(disturbed)} (cells kept after the retries ran out): those figures are "
            "disturbed; rerun on a quiet machine.")
    if redone:
        notes.append(f"{redone} cell(s) disturbed by other processes (over the OTHER_MAX share of "
                     "CPU) were measured again; only the kept ones count.")
    if any(stats[t]["errors"] for t in order):
        notes.append("errors = non-2xx/3xx responses + socket errors reported by wrk, over all "
                     "cells: a target with errors is not measured fairly.")
    if idle:
        i = next(iter(idle.values()))
        notes.append(f"RSS per idle conn: growth of the proxy's VmRSS with {i['conns']} open "
                     "keep-alive connections, each after one request, 3 s idle (bench/idle_conns.py)"
                     "; KiB = 1024 bytes.")
    if "direct" in stats:
        notes.append("direct = wrk straight at one origin: the ceiling of this client setup.")
    reps = max((s["n"] for s in stats.values()), default=0)
    notes.append(f"{reps} repetition(s) per target, interleaved; proxy on cpu1, wrk and origins "
                 "on cpu0; medians over repetitions; CPU shares from /proc/PID/stat.")
    print("\n".join(out))
    print()
    for n in notes:
        print(f"- {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
