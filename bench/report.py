#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Renders one bench/run.sh result directory as markdown tables: bench/report.py DIR

Reads DIR/cells.tsv (one row per measured wrk cell), DIR/idle.tsv (one row per idle-memory
test) and DIR/skipped.tsv (targets that did not run, and why) for the plain HTTP/1.1 table, and
DIR/tls_cells.tsv, DIR/idle_tls.tsv and DIR/tls_skipped.tsv, when present, for the TLS and
HTTP/2 table, and DIR/geo_cells.tsv (with its "clients" column: one set of cells per client population),
DIR/geo_checks.tsv, DIR/geo_skipped.tsv and DIR/perf/*-top.txt, when present, for the GeoIP
routing tables (routing on / off per population, then every cell), and DIR/budget_cells.tsv
(with its "redis_commands" and "redis_scripts" columns), DIR/budget_checks.tsv and
DIR/budget_skipped.tsv, when present, for the request budget tables (rate_limit on / off,
then every cell), and DIR/utls_cells.tsv (with its "proxy", "upstream", "up_conns",
"tls_full" and "tls_resumed" columns), DIR/utls_checks.tsv and DIR/utls_skipped.tsv, when
present, for the upstream TLS tables (per proxy: clear-text against TLS upstream, then every
cell). Medians over the repetitions, with min-max for rates; ratios are taken against
HAProxy measured in the same run, since figures from different runs on this machine do not
compare (see shared/BENCHMARKING.md).
"""
import csv
import statistics
import sys

GEO_BAR = 0.97  # GeoIP routing on / off in requests per proxy-CPU-second: at least this
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


def k2(v):
    """k() with one more digit below 10k (handshake rates)."""
    return f"{v / 1000:.2f}k" if v < 10000 else k(v)


def lat(us):
    return f"{us:.0f} µs" if us < 1000 else f"{us / 1000:.2f} ms"


def num(row, key):
    v = row.get(key, "")
    return float(v) if v not in ("", "-") else None


def idle_cell(i):
    if i is None:
        return "—"
    if int(i["ok"]) == 0:
        return "failed"
    rss = f"{float(i['bytes_per_conn']) / 1024:.2f} KiB"
    if int(i["failed"]) or int(i["closed_early"]):
        rss += f" ({i['failed']} failed, {i['closed_early']} closed)"
    return rss


TLS_TESTS = [
    ("tls", "HTTP/1.1 over TLS", "req/s"),
    ("h2", "HTTP/2 over TLS", "req/s"),
    ("handshake", "full TLS handshakes", "hs/s"),
]


def tls_report(run, meta):
    """The TLS and HTTP/2 table, and its notes; ([], []) when the run had no TLS suite."""
    all_cells = read_tsv(f"{run}/tls_cells.tsv")
    cells = [r for r in all_cells if r.get("kept", "1") == "1"]
    redone = len(all_cells) - len(cells)
    idle = read_tsv(f"{run}/idle_tls.tsv")
    skipped = read_tsv(f"{run}/tls_skipped.tsv")
    if not all_cells and not idle and not skipped:
        return [], []
    plain_idle = {r["target"]: r for r in read_tsv(f"{run}/idle.tsv")}
    targets = []
    for r in cells + idle + skipped:
        if r["target"] not in targets:
            targets.append(r["target"])

    out = ["| test | target | rate median (min–max) | p50 | p99 | proxy CPU | per proxy-CPU-s "
           "| vs HAProxy rate | vs HAProxy per CPU | cpu0 (client + origins) | other CPU | errors |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    notes, client_bound, disturbed, hs_check = [], [], [], []
    for suite, title, unit in TLS_TESTS:
        stats = {}
        for t in targets:
            rows = [r for r in cells if r["suite"] == suite and r["target"] == t]
            if not rows:
                continue
            rate = [num(r, "rate") for r in rows]
            cpu = [num(r, "proxy_cpu_pct") for r in rows]
            cpu0 = [num(r, "origin_cpu_pct") + num(r, "client_cpu_pct") for r in rows]
            med = lambda key: (statistics.median(num(r, key) for r in rows)
                               if all(num(r, key) is not None for r in rows) else None)
            stats[t] = {
                "rate": statistics.median(rate), "min": min(rate), "max": max(rate),
                "p50": med("p50_us"), "p99": med("p99_us"), "mean": med("mean_us"),
                "cpu": statistics.median(cpu),
                "per_cpu": statistics.median(q / (c / 100) for q, c in zip(rate, cpu) if c)
                if all(cpu) else None,
                "cpu0": statistics.median(cpu0),
                "other": statistics.median(num(r, "other_cpu_pct") for r in rows),
                "other_max": max(num(r, "other_cpu_pct") for r in rows),
                "errors": sum(int(r["errors"]) for r in rows),
                "full": [r["server_full"] for r in rows],
                "resumed": [r["server_resumed"] for r in rows],
                "count": sum(int(float(r["count"])) for r in rows),
            }
        ref = stats.get("haproxy")
        unit_cpu = "hs" if suite == "handshake" else "req"
        for t in targets:
            s = stats.get(t)
            why = next((r["reason"] for r in skipped
                        if r["suite"] == suite and r["target"] == t), None)
            if s is None:
                if why:
                    out.append(f"| {title} | {t} | skipped: {why} | | | | | | | | | |")
                continue
            if s["p50"] is not None:
                p50, p99 = lat(s["p50"]), lat(s["p99"])
            elif s["mean"] is not None:
                p50, p99 = f"mean {lat(s['mean'])}", "—"
            else:
                p50 = p99 = "—"
            per_cpu = f"{k2(s['per_cpu'])} {unit_cpu}" if s["per_cpu"] is not None else "—"
            vs_rate = f"{s['rate'] / ref['rate']:.2f}" if ref else "—"
            vs_cpu = (f"{s['per_cpu'] / ref['per_cpu']:.2f}"
                      if ref and ref["per_cpu"] and s["per_cpu"] is not None else "—")
            rate = f"{k2(s['rate'])} ({k2(s['min'])}–{k2(s['max'])}) {unit}"
            out.append(f"| {title} | {t} | {rate} | {p50} | {p99} | {s['cpu']:.0f}% | {per_cpu} "
                       f"| {vs_rate} | {vs_cpu} | {s['cpu0']:.0f}% | {s['other']:.0f}% "
                       f"| {s['errors']} |")
            if s["cpu0"] >= CPU0_BUSY and s["cpu"] < CPU0_BUSY:
                client_bound.append(f"{title} {t}")
            if s["other_max"] >= OTHER_BUSY:
                disturbed.append(f"{title} {t}")
            if suite == "handshake":
                if all(v not in ("", "-") for v in s["resumed"]):
                    resumed = sum(int(v) for v in s["resumed"])
                    full = (f" of {sum(int(v) for v in s['full'])} sessions"
                            if all(v not in ("", "-") for v in s["full"]) else "")
                    hs_check.append(f"{t} {resumed} resumed{full}")
                else:
                    hs_check.append(f"{t} not checked")
    for i in idle:
        t = i["target"]
        plain = plain_idle.get(t)
        extra = f" (plain: {idle_cell(plain)})" if plain else ""
        out.append(f"| RSS per idle TLS conn | {t} | {idle_cell(i)}{extra} | | | | | | | | | |")
    for r in skipped:
        if r["suite"] == "idle-tls":
            out.append(f"| RSS per idle TLS conn | {r['target']} | skipped: {r['reason']} "
                       "| | | | | | | | | |")

    if client_bound:
        notes.append(f"{', '.join(client_bound)}: cpu0 (client + origins) was at least "
                     f"{CPU0_BUSY:.0f}% busy while the proxy was not: the client side limited the "
                     "rate, so compare by the per proxy-CPU-second rate.")
    if any(r["suite"] == "handshake" for r in cells):
        notes.append(
            "full TLS handshakes: " + meta.get("hs_clients", "2") + " `openssl s_time -new "
            "-tls1_3 -www /` at once: every connection a new TLS 1.3 session (ECDHE X25519, "
            "ECDSA P-256 certificate) carrying one HTTP/1.0 request, never a resumption; rate = "
            "connections / wall time. The client's side of a handshake costs more CPU than the "
            "server's, so cpu0 limits the rate: compare by hs per proxy-CPU-second. Resumptions "
            "counted by the proxy during the cells: " + "; ".join(hs_check) + " (HAProxy: "
            "ssl_sess / ssl_reused_sess of the TLS frontend; nginx: a log of "
            "$ssl_session_reused = r; Meridian: tls_handshakes_full / _resumed in its admin /status).")
    if any(r["suite"] == "h2" for r in cells):
        notes.append("HTTP/2: h2load reports no percentiles, only the mean time per request.")
    if disturbed:
        notes.append(f"other CPU reached {OTHER_BUSY:.0f}% or more in cells of "
                     f"{', '.join(disturbed)} (kept after the retries ran out): rerun.")
    if redone:
        notes.append(f"{redone} TLS cell(s) disturbed by other processes were measured again.")
    if idle:
        notes.append(f"RSS per idle TLS conn: growth of the proxy's VmRSS with {idle[0]['conns']} "
                     "open TLS 1.3 connections (a full handshake and one request each, 3 s idle; "
                     "bench/idle_conns.py --tls), measured after the TLS cells in the same "
                     "processes; plain = the same without TLS, from the table above.")
    return out, notes


def cell_stats(cells, order):
    """Per-target figures of wrk cells (cells.tsv or geo_cells.tsv rows), medians over reps."""
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
    return stats


GEO_LABELS = {
    "haproxy": "haproxy",
    "nginx": "nginx",
    "meridian": "meridian (one region of five origins)",
    "meridian-geo-off": "meridian, routing off",
    "meridian-geo-on": "meridian, routing on",
}
GEO_ORDER = ["haproxy", "nginx", "meridian", "meridian-geo-off", "meridian-geo-on"]
GEO_PAIR = ("meridian-geo-on", "meridian-geo-off")


def geo_populations(run, cells):
    """The population (number of distinct client addresses) of each geo cell, in run order,
    and the size of the whole list. Rows of runs before populations existed get the one
    population of their meta.txt."""
    import re
    try:
        with open(f"{run}/meta.txt") as f:
            meta = f.read()
    except FileNotFoundError:
        meta = ""
    m = re.search(r"\(([0-9]+) addresses, ", meta)
    n_all = int(m.group(1)) if m else None
    old = re.search(r"\(([0-9]+) addresses, GEO_CLIENTS_MAX ([0-9]+)\)", meta)
    default = "?"
    if old:
        n_max = int(old.group(2))
        default = str(min(n_max, n_all) if n_max else n_all)
    pops = []
    for r in cells:
        if not r.get("clients"):
            r["clients"] = default
        if r["clients"] not in pops:
            pops.append(r["clients"])
    return pops, n_all


def pop_label(n, n_all):
    if n_all is not None and n == str(n_all):
        return f"{int(n):,} clients (all: every request a new client)"
    if n.isdigit():
        return f"{int(n):,} clients (working set)"
    return f"{n} clients"


def geo_report(run):
    """The GeoIP routing tables (every cell; routing on / off per population) and their notes;
    ([], [], []) when the run had no geo suite."""
    all_cells = read_tsv(f"{run}/geo_cells.tsv")
    cells = [r for r in all_cells if r.get("kept", "1") == "1"]
    redone = [r for r in all_cells if r.get("kept", "1") != "1"]
    skipped = read_tsv(f"{run}/geo_skipped.tsv")
    checks = read_tsv(f"{run}/geo_checks.tsv")
    if not all_cells and not skipped:
        return [], [], []
    pops, n_all = geo_populations(run, cells)
    targets = [t for t in GEO_ORDER if any(r["target"] == t for r in cells)]
    targets += [t for t in dict.fromkeys(r["target"] for r in cells) if t not in targets]

    out = ["| clients | target | req/s median (min–max) | p50 | p99 | proxy CPU "
           "| req per proxy-CPU-s | vs HAProxy req/s | vs HAProxy per CPU | cpu0 (origins + wrk) "
           "| other CPU | errors |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    pair_rows = []
    unresolved = []  # populations whose per-repetition ratios lie on both sides of the bar
    notes, busy, disturbed, errors = [], [], [], False
    for pop in pops:
        pcells = [r for r in cells if r["clients"] == pop]
        order = [t for t in targets if any(r["target"] == t for r in pcells)]
        stats = cell_stats(pcells, order)
        ref = stats.get("haproxy")
        for t in order:
            st = stats[t]
            cpu = f"{st['cpu']:.0f}%" if st["cpu"] is not None else "—"
            per_cpu = k(st["per_cpu"]) if st["per_cpu"] is not None else "—"
            vs_rps = f"{st['rps'] / ref['rps']:.2f}" if ref else "—"
            vs_cpu = (f"{st['per_cpu'] / ref['per_cpu']:.2f}"
                      if ref and ref["per_cpu"] and st["per_cpu"] is not None else "—")
            name = GEO_LABELS.get(t, t)
            if t in GEO_PAIR:
                name = f"**{name}**"
            out.append(f"| {int(pop):,} | " if pop.isdigit() else f"| {pop} | ")
            out[-1] += (f"{name} | {k(st['rps'])} ({k(st['min'])}–{k(st['max'])}) "
                        f"| {lat(st['p50'])} | {lat(st['p99'])} | {cpu} | {per_cpu} | {vs_rps} "
                        f"| {vs_cpu} | {st['cpu0']:.0f}% | {st['other']:.0f}% | {st['errors']} |")
            if st["busy"]:
                busy.append(f"{t} ({pop})")
            if st["other_max"] >= OTHER_BUSY:
                disturbed.append(f"{t} ({pop})")
            errors = errors or bool(st["errors"])

        on, off = stats.get(GEO_PAIR[0]), stats.get(GEO_PAIR[1])
        if not (on and off and on["per_cpu"] and off["per_cpu"]):
            if on or off:
                pair_rows.append(f"| {pop_label(pop, n_all)} | not computed: one of the pair is "
                                 "missing or has no CPU figure | | | | | | | | |")
            continue
        # the ratio of the medians, and the ratios of the on and off cells of each repetition
        by_rep = {}
        for r in pcells:
            if r["target"] in GEO_PAIR and num(r, "proxy_cpu_pct"):
                by_rep.setdefault(r["rep"], {})[r["target"]] = (
                    num(r, "req_s") / (num(r, "proxy_cpu_pct") / 100))
        per_rep = [v[GEO_PAIR[0]] / v[GEO_PAIR[1]] for v in by_rep.values() if len(v) == 2]
        ratio = on["per_cpu"] / off["per_cpu"]
        verdict = "met" if ratio >= GEO_BAR else "**NOT met**"
        if len(per_rep) > 1 and min(per_rep) < GEO_BAR <= max(per_rep):
            verdict += " by the medians, but the repetitions straddle the bar: not resolved"
            unresolved.append(pop)
        reps = (f"{min(per_rep):.3f}–{max(per_rep):.3f}" if len(per_rep) > 1
                else (f"{per_rep[0]:.3f}" if per_rep else "—"))
        pair_rows.append(
            f"| {pop_label(pop, n_all)} | {k(off['rps'])} / {k(on['rps'])} "
            f"| {off['cpu']:.0f}% / {on['cpu']:.0f}% "
            f"| {k(off['per_cpu'])} / {k(on['per_cpu'])} | **{ratio:.3f}** | {reps} "
            f"| {on['rps'] / off['rps']:.3f} | {verdict}"
            f"{' (errors: not fair)' if on['errors'] or off['errors'] else ''} |")

    pair = []
    if pair_rows:
        pair = ["| population | req/s off / on | proxy CPU off / on | req per proxy-CPU-s off / on "
                f"| on / off per proxy-CPU-s | same, per repetition | on / off req/s "
                f"| bar: on / off ≥ {GEO_BAR:.2f} per proxy-CPU-s |",
                "|---|---|---|---|---|---|---|---|"] + pair_rows
    for r in skipped:
        out.append(f"| | {GEO_LABELS.get(r['target'], r['target'])} | skipped: {r['reason']} "
                   "| | | | | | | | | |")

    notes.append(
        "on and off are the same Meridian configuration (five regions at the bench locations, "
        "every region's backends the same five origins in the same order, round-robin; the "
        "same wrk script) but for `client_ip` (X-Forwarded-For trusted from 127.0.0.1) and "
        "`geoip` (the large database) in \"on\": off sends every request to the default region, "
        "on to the nearest region, and either way the requests are spread over the same five "
        "origins. What on pays more: taking the address from X-Forwarded-For, the GeoIP lookup "
        "(its cache, or the database), the nearest region, and the X-Client-Country header it "
        "adds (both add X-Client-Region). The ratio in the second table is the median req per "
        "proxy-CPU-second of on over that of off; \"per repetition\": the range of the ratios of "
        "the on and off cells of the same repetition (adjacent cells; their order alternates).")
    if unresolved:
        notes.append(
            f"not resolved ({', '.join(pop_label(p, n_all) for p in unresolved)}): the ratios "
            "of single repetitions lie on both sides of the bar, so the run cannot tell a 3% "
            "difference from this machine's drift; more repetitions, or a quieter machine, "
            "would. The perf profile below gives another estimate: the share of the routing-on "
            "process's samples spent in libmaxminddb, geo_*, client_ip_* and route_*.")
    for c in checks:
        label = GEO_LABELS.get(c["target"], c["target"])
        if int(c["misrouted"]):
            notes.append(f"routing check: **{label} failed {c['misrouted']} of {c['checked']} "
                         f"checks** (20 sample clients' regions, one spread): {c['detail']}.")
        else:
            want = ("the client's region" if c["target"] == "meridian-geo-on"
                    else "eu, the default region")
            notes.append(f"routing check: {label} passed all {c['checked']} checks: four sample "
                         "clients per region, through X-Forwarded-For, each sent to " + want +
                         " (X-Client-Region as received by the origin's /headers)" +
                         (", and ten requests of one ap client spread over all five origins."
                          if int(c["checked"]) > 20 else "."))
    notes.append(
        "clients: every request carries X-Forwarded-For with the next address of the "
        "population, round-robin (bench/geo_clients.lua; addresses inside the database's "
        "networks, 80% near the five regions, 20% elsewhere). Meridian answers IPv4 clients from "
        "its flat index of the database's IPv4 ranges (its per-worker answer cache serves only "
        "the lookups that walk the tree: IPv6). The whole list: an address comes back only "
        "after all the others, so the index's lines are rarely in the CPU's caches: the worst "
        "case. The working set: a population that comes back, as an edge node's clients do, "
        "whose part of the index stays in cache (bench/README.md). HAProxy and "
        "nginx proxy the same requests as in the plain cell (round-robin over the five origins, "
        "appending to X-Forwarded-For).")
    if busy:
        notes.append(f"{', '.join(busy)}: cpu0 (wrk + origins) was at least {CPU0_BUSY:.0f}% busy "
                     "in some cells: the client side limits req/s; compare by req per "
                     "proxy-CPU-second.")
    if disturbed:
        notes.append(f"other CPU reached {OTHER_BUSY:.0f}% or more in cells of "
                     f"{', '.join(disturbed)} (kept after the retries ran out): rerun.")
    if redone:
        which = ", ".join(f"{r['target']} ({r.get('clients', '?')}) rep {r['rep']}"
                          for r in redone)
        notes.append(f"{len(redone)} geo cell(s) disturbed by other processes (over the "
                     f"OTHER_MAX share of CPU) were measured again: {which}.")
    if errors:
        notes.append("errors = non-2xx/3xx responses + socket errors reported by wrk, over all "
                     "cells: a target with errors is not measured fairly.")
    import glob
    import os
    profiles = []
    for path in glob.glob(f"{run}/perf/*-top.txt"):
        name = os.path.basename(path)[:-len("-top.txt")]
        t, _, pop = name.rpartition("-c")
        if not (t in GEO_LABELS and pop.isdigit()):
            t, pop = name, None
        # by target, then in the order of the populations
        profiles.append(((t, pops.index(pop) if pop in pops else len(pops)), name, t, pop, path))
    for _, name, t, pop, path in sorted(profiles):
        with open(path) as f:
            top = [l.rstrip("\n") for l in f][:15]
        if not top:
            continue
        what = GEO_LABELS.get(t, t) + (f", {pop_label(pop, n_all)}" if pop else "")
        notes.append(f"profile of {what} (perf record -g, perf report --no-children "
                     f"--sort dso,symbol; Meridian's and libmaxminddb's lines, % of the "
                     f"proxy's samples; all of it in perf/{name}.txt):\n\n  ```\n"
                     + "\n".join(f"  {l}" for l in top) + "\n  ```")
    return out, pair, notes


BUDGET_BAR = 0.97  # rate_limit on / off in requests per proxy-CPU-second: at least this
BUDGET_REDIS_BAR = 50  # admitted requests per Redis command: at least this
BUDGET_LABELS = {
    "haproxy": "haproxy",
    "nginx": "nginx",
    "meridian-budget-off": "meridian, no rate_limit",
    "meridian-budget-on": "meridian, rate_limit on Redis",
}
BUDGET_ORDER = ["haproxy", "nginx", "meridian-budget-off", "meridian-budget-on"]
BUDGET_PAIR = ("meridian-budget-on", "meridian-budget-off")


def per_command(r, key):
    """Admitted requests (wrk's requests less its non-2xx/3xx) per Redis command of a
    meridian-budget-on cell: inf when Redis ran none, None when not counted."""
    cmds = num(r, key)
    if cmds is None:
        return None
    admitted = num(r, "requests") - num(r, "non2xx")
    return admitted / cmds if cmds else float("inf")


def one_per(n, prefix="1 per "):
    return "none" if n == float("inf") else f"{prefix}{n:,.0f}"


def budget_report(run):
    """The request budget tables (rate_limit on / off, then every cell) and their notes;
    ([], [], []) when the run had no budget suite."""
    all_cells = read_tsv(f"{run}/budget_cells.tsv")
    cells = [r for r in all_cells if r.get("kept", "1") == "1"]
    redone = [r for r in all_cells if r.get("kept", "1") != "1"]
    skipped = read_tsv(f"{run}/budget_skipped.tsv")
    checks = read_tsv(f"{run}/budget_checks.tsv")
    if not all_cells and not skipped:
        return [], [], []
    targets = [t for t in BUDGET_ORDER if any(r["target"] == t for r in cells)]
    targets += [t for t in dict.fromkeys(r["target"] for r in cells) if t not in targets]
    stats = cell_stats(cells, targets)
    ref = stats.get("haproxy")
    redis = {}  # target -> (per-rep admitted per command, the same per EVALSHA/EVAL)
    for t in targets:
        rows = [r for r in cells if r["target"] == t]
        n = [per_command(r, "redis_commands") for r in rows]
        s = [per_command(r, "redis_scripts") for r in rows]
        if rows and all(v is not None for v in n + s):
            redis[t] = (n, s)

    out = ["| target | req/s median (min–max) | p50 | p99 | proxy CPU | req per proxy-CPU-s "
           "| vs HAProxy req/s | vs HAProxy per CPU | cpu0 (origins + Redis + wrk) | other CPU "
           "| Redis commands (EVALSHA/EVAL alone) | errors |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    notes, busy, disturbed = [], [], []
    for t in targets:
        st = stats[t]
        cpu = f"{st['cpu']:.0f}%" if st["cpu"] is not None else "—"
        per_cpu = k(st["per_cpu"]) if st["per_cpu"] is not None else "—"
        vs_rps = f"{st['rps'] / ref['rps']:.2f}" if ref else "—"
        vs_cpu = (f"{st['per_cpu'] / ref['per_cpu']:.2f}"
                  if ref and ref["per_cpu"] and st["per_cpu"] is not None else "—")
        name = BUDGET_LABELS.get(t, t)
        if t in BUDGET_PAIR:
            name = f"**{name}**"
        cmds = "—"
        if t in redis:
            n, s = redis[t]
            cmds = f"{one_per(statistics.median(n))} ({one_per(statistics.median(s))})"
        out.append(f"| {name} | {k(st['rps'])} ({k(st['min'])}–{k(st['max'])}) "
                   f"| {lat(st['p50'])} | {lat(st['p99'])} | {cpu} | {per_cpu} | {vs_rps} "
                   f"| {vs_cpu} | {st['cpu0']:.0f}% | {st['other']:.0f}% | {cmds} "
                   f"| {st['errors']} |")
        if st["busy"]:
            busy.append(t)
        if st["other_max"] >= OTHER_BUSY:
            disturbed.append(t)
    for r in skipped:
        out.append(f"| {BUDGET_LABELS.get(r['target'], r['target'])} | skipped: {r['reason']} "
                   "| | | | | | | | | | |")

    pair = []
    on, off = stats.get(BUDGET_PAIR[0]), stats.get(BUDGET_PAIR[1])
    head = ["| req/s off / on | proxy CPU off / on | req per proxy-CPU-s off / on "
            "| on / off per proxy-CPU-s | same, per repetition | on / off req/s "
            "| Redis commands per admitted request (min–max) "
            f"| bars: on / off ≥ {BUDGET_BAR:.2f} per proxy-CPU-s, ≤ 1 Redis command per "
            f"{BUDGET_REDIS_BAR} requests |",
            "|---|---|---|---|---|---|---|---|"]
    unresolved = []
    if on and off and on["per_cpu"] and off["per_cpu"]:
        # the ratio of the medians, and the ratios of the on and off cells of each repetition
        by_rep = {}
        for r in cells:
            if r["target"] in BUDGET_PAIR and num(r, "proxy_cpu_pct"):
                by_rep.setdefault(r["rep"], {})[r["target"]] = (
                    num(r, "req_s") / (num(r, "proxy_cpu_pct") / 100))
        per_rep = [v[BUDGET_PAIR[0]] / v[BUDGET_PAIR[1]] for v in by_rep.values() if len(v) == 2]
        ratio = on["per_cpu"] / off["per_cpu"]
        cpu_ok = ratio >= BUDGET_BAR
        if len(per_rep) > 1 and min(per_rep) < BUDGET_BAR <= max(per_rep):
            unresolved.append("on / off per proxy-CPU-second")
        reps = (f"{min(per_rep):.3f}–{max(per_rep):.3f}" if len(per_rep) > 1
                else (f"{per_rep[0]:.3f}" if per_rep else "—"))
        parts = [f"CPU {'met' if cpu_ok else '**NOT met**'}"]
        ok = cpu_ok
        if BUDGET_PAIR[0] in redis:
            n, s = redis[BUDGET_PAIR[0]]
            n_med = statistics.median(n)
            redis_ok = n_med >= BUDGET_REDIS_BAR
            ok = ok and redis_ok
            parts.append(f"Redis {'met' if redis_ok else '**NOT met**'}")
            if len(n) > 1 and min(n) < BUDGET_REDIS_BAR <= max(n):
                unresolved.append("requests per Redis command")
            cmds = one_per(n_med) + (f" ({one_per(min(n), '')}–{one_per(max(n), '')})"
                                     if len(n) > 1 else "")
        else:
            ok = False
            parts.append("Redis not counted")
            cmds = "not counted"
        verdict = ("met" if ok else "**NOT met**") + f" ({', '.join(parts)})"
        if unresolved:
            verdict += (" by the medians, but the repetitions straddle the bar "
                        f"({', '.join(unresolved)}): not resolved")
        if on["errors"] or off["errors"]:
            verdict += " (errors: not fair)"
        pair = head + [
            f"| {k(off['rps'])} / {k(on['rps'])} | {off['cpu']:.0f}% / {on['cpu']:.0f}% "
            f"| {k(off['per_cpu'])} / {k(on['per_cpu'])} | **{ratio:.3f}** | {reps} "
            f"| {on['rps'] / off['rps']:.3f} | {cmds} | {verdict} |"]
    elif on or off:
        pair = head + ["| not computed: one of the pair is missing or has no CPU figure "
                       "| | | | | | | |"]

    if not cells:
        return out, pair, notes
    notes.append(
        "on and off are the same Meridian configuration (the plain bench Meridian: one region "
        "of the five origins, round-robin) but for the `rate_limit` section of \"on\": a "
        "budget of 10 million req/s (burst 10 million) kept in a redis-server on cpu0 "
        "(`on_redis_failure: local`, `timeout: 50ms`), far above the load, so every request "
        "is admitted: on pays for the token leases it takes from Redis and spends locally. "
        "The ratio is the median req per proxy-CPU-second of on over that of off; \"per "
        "repetition\": the range of the ratios of the on and off cells of the same repetition "
        "(adjacent cells; their order alternates).")
    notes.append(
        "Redis commands: INFO commandstats after each on cell, reset (CONFIG RESETSTAT) after "
        "its warm-up; the calls of every command but those two, including the commands the "
        "Lua scripts run inside Redis (TIME, HMGET, HSET, PEXPIRE per lease; ZADD, "
        "ZREMRANGEBYSCORE, PEXPIRE, ZCARD per heartbeat), so the stricter count. In brackets: "
        "EVALSHA and EVAL alone, the requests Meridian sends to Redis. Admitted requests = "
        "wrk's completed requests less its non-2xx/3xx; the median over repetitions.")
    if unresolved:
        notes.append(
            f"not resolved ({', '.join(unresolved)}): the figures of single repetitions lie "
            "on both sides of the bar, so the run cannot tell whether it is met from this "
            "machine's drift; more repetitions, or a quieter machine, would.")
    for c in checks:
        label = BUDGET_LABELS.get(c["target"], c["target"])
        if int(c["failed"]):
            notes.append(f"check: **{label} failed {c['failed']} of {c['checked']} checks**: "
                         f"{c['detail']}.")
        else:
            what = ("every worker's `rate_limit` mode \"shared\" in /status"
                    if c["target"] == "meridian-budget-on" else "`rate_limit` null in /status")
            notes.append(f"check: {label} passed: 20 requests answered 200, and {what}.")
    fails = [(r["rep"], int(r["redis_failures"])) for r in cells
             if r["target"] == BUDGET_PAIR[0] and r.get("redis_failures", "-") not in ("", "-")
             and int(r["redis_failures"])]
    if fails:
        notes.append(
            "**Redis failed during on cells** (Meridian's \"rate_limit: Redis failed\" "
            "warnings: " + ", ".join(f"{n} in rep {rep}" for rep, n in fails) + "): after "
            "each, the worker ran on its local fallback bucket until Redis answered again, so "
            "those cells did not measure the shared budget alone.")
    elif any(r["target"] == BUDGET_PAIR[0] and r.get("redis_failures") for r in cells):
        notes.append("Meridian logged no \"rate_limit: Redis failed\" during the on cells: "
                     "they ran on the shared budget throughout.")
    lim = [r for r in cells if r["target"] == BUDGET_PAIR[0]
           and all(r.get(c, "-") not in ("", "-") for c in ("rl_admitted", "rl_waited", "rl_refused"))]
    if lim:
        rng = lambda c: (f"{min(int(r[c]) for r in lim):,}–{max(int(r[c]) for r in lim):,}"
                         if len(lim) > 1 else f"{int(lim[0][c]):,}")
        refused = sum(int(r["rl_refused"]) for r in lim)
        notes.append(
            f"the limiter's own counts in the on cells (admin /status, {len(lim)} cell(s)): "
            f"admitted {rng('rl_admitted')} (wrk's requests: {rng('requests')}), waited for a "
            f"lease {rng('rl_waited')}, " + (f"**refused (429/503) {refused:,}**"
                                             if refused else "refused 0") + ".")
    if busy:
        notes.append(f"{', '.join(busy)}: cpu0 (wrk + origins + Redis) was at least "
                     f"{CPU0_BUSY:.0f}% busy in some cells: the client side limits req/s; "
                     "compare by req per proxy-CPU-second.")
    if disturbed:
        notes.append(f"other CPU reached {OTHER_BUSY:.0f}% or more in cells of "
                     f"{', '.join(disturbed)} (kept after the retries ran out): rerun.")
    if redone:
        which = ", ".join(f"{r['target']} rep {r['rep']}" for r in redone)
        notes.append(f"{len(redone)} budget cell(s) disturbed by other processes (over the "
                     f"OTHER_MAX share of CPU) were measured again: {which}.")
    if any(stats[t]["errors"] for t in targets):
        notes.append("errors = non-2xx/3xx responses + socket errors reported by wrk, over all "
                     "cells: a target with errors is not measured fairly (for "
                     "meridian-budget-on, a 429 or 503 would mean the budget or the Redis link "
                     "refused requests it should have admitted).")
    return out, pair, notes


UTLS_BAR_MERIDIAN_VS_HAPROXY = 1.10  # Meridian's B req per proxy-CPU-s / HAProxy's: at least this
UTLS_PROXIES = ["haproxy", "nginx", "meridian"]


def utls_label(t):
    p, _, b = t.partition("-utls")
    return f"{p}, TLS upstream (B)" if _ else f"{t}, clear-text upstream (A)"


def utls_report(run):
    """The upstream TLS tables (per proxy: A and B, B / A, Meridian / peer; then every cell) and
    their notes; ([], [], []) when the run had no upstream-tls suite."""
    all_cells = read_tsv(f"{run}/utls_cells.tsv")
    cells = [r for r in all_cells if r.get("kept", "1") == "1"]
    redone = [r for r in all_cells if r.get("kept", "1") != "1"]
    skipped = read_tsv(f"{run}/utls_skipped.tsv")
    checks = read_tsv(f"{run}/utls_checks.tsv")
    if not all_cells and not skipped:
        return [], [], []
    proxies = [p for p in UTLS_PROXIES if any(r.get("proxy") == p for r in cells)]
    proxies += [p for p in dict.fromkeys(r.get("proxy") for r in cells) if p not in proxies]
    targets = []
    for p in proxies:
        targets += [t for t in (p, f"{p}-utls") if any(r["target"] == t for r in cells)]
    stats = cell_stats(cells, targets)

    def per_cpu_by_rep(t):
        return {r["rep"]: num(r, "req_s") / (num(r, "proxy_cpu_pct") / 100)
                for r in cells if r["target"] == t and num(r, "proxy_cpu_pct")}

    def ints(t, key):
        v = [r.get(key, "-") for r in cells if r["target"] == t]
        return [int(x) for x in v] if v and all(x not in ("", "-") for x in v) else None

    # B / A per proxy, of the medians and per repetition (the two cells of a repetition are
    # adjacent)
    ratio, ratio_rps, ratio_reps = {}, {}, {}
    for p in proxies:
        a, b = stats.get(p), stats.get(f"{p}-utls")
        if a and b and a["per_cpu"] and b["per_cpu"]:
            ratio[p] = b["per_cpu"] / a["per_cpu"]
        if a and b:
            ratio_rps[p] = b["rps"] / a["rps"]
        ra, rb = per_cpu_by_rep(p), per_cpu_by_rep(f"{p}-utls")
        ratio_reps[p] = {rep: rb[rep] / ra[rep] for rep in ra if rep in rb}
    mb = stats.get("meridian-utls")

    def new_conns(t):
        """New upstream connections per cell: "median (per 1,000 requests)", the proxy's own
        count of TLS handshakes, full + resumed, summed over the cells, or None."""
        conns = ints(t, "up_conns")
        if conns is None:
            return "not counted", None
        reqs = statistics.median(num(r, "requests") for r in cells if r["target"] == t)
        per_k = statistics.median(conns) / reqs * 1000 if reqs else 0
        text = f"{statistics.median(conns):.0f} ({per_k:.2f} per 1k req)"
        full, res = ints(t, "tls_full"), ints(t, "tls_resumed")
        return text, (f"{sum(full)} + {sum(res)}" if full is not None and res is not None
                      else None)

    summary = ["| proxy | req/s A / B | B / A req/s | proxy CPU A / B | req per proxy-CPU-s A / B "
               "| **B / A per proxy-CPU-s** (per repetition) | Meridian's B per proxy-CPU-s / "
               "this proxy's | new TLS connections to the origins per B cell, median (per "
               "1,000 requests) | TLS handshakes in B, the proxy's count: full + resumed |",
               "|---|---|---|---|---|---|---|---|---|"]
    for p in proxies:
        a, b = stats.get(p), stats.get(f"{p}-utls")
        why = next((r["reason"] for r in skipped if r["target"] in (f"{p}-utls", p)), None)
        if not (a and b):
            summary.append(f"| {p} | B not measured{': ' + why if why else ''} | | | | | | | |")
            continue
        cpu = lambda s: f"{s['cpu']:.0f}%" if s["cpu"] is not None else "—"
        pc = lambda s: k(s["per_cpu"]) if s["per_cpu"] is not None else "—"
        reps = sorted(ratio_reps[p].values())
        rr = (f" ({reps[0]:.3f}–{reps[-1]:.3f})" if len(reps) > 1 else "")
        rat = f"**{ratio[p]:.3f}**{rr}" if p in ratio else "—"
        vs = (f"{mb['per_cpu'] / b['per_cpu']:.2f}"
              if mb and mb["per_cpu"] and b["per_cpu"] and p != "meridian" else "—")
        conns, hs = new_conns(f"{p}-utls")
        summary.append(
            f"| {p} | {k(a['rps'])} / {k(b['rps'])} | {ratio_rps[p]:.3f} | {cpu(a)} / {cpu(b)} "
            f"| {pc(a)} / {pc(b)} | {rat} | {vs} | {conns} | {hs or 'not counted'} |")

    verdict = []
    peers = [p for p in ("haproxy", "nginx") if p in ratio]
    if "meridian" in ratio and peers:
        best = max(peers, key=lambda p: ratio[p])
        ok = ratio["meridian"] >= ratio[best]
        line = (f"Meridian's B / A per proxy-CPU-second {ratio['meridian']:.3f}, the best "
                f"peer's ({best}) {ratio[best]:.3f}: {'met' if ok else '**NOT met**'}")
        # per repetition: Meridian's ratio against the best peer's ratio of that repetition
        diffs = [ratio_reps["meridian"][rep] - max(ratio_reps[q][rep] for q in peers)
                 for rep in ratio_reps["meridian"]
                 if all(rep in ratio_reps[q] for q in peers)]
        if len(diffs) > 1 and min(diffs) < 0 <= max(diffs):
            line += " by the medians, but single repetitions lie on both sides: not resolved"
        best_rps = max(peers, key=lambda p: ratio_rps[p])
        line += (f" (in req/s: {ratio_rps['meridian']:.3f} against {best_rps}'s "
                 f"{ratio_rps[best_rps]:.3f})")
        verdict.append(line)
    else:
        verdict.append("Meridian's B / A against the best peer's: not computed (a cell is "
                       "missing or has no CPU figure)")
    hb = stats.get("haproxy-utls")
    if mb and hb and mb["per_cpu"] and hb["per_cpu"]:
        v = mb["per_cpu"] / hb["per_cpu"]
        ok = v >= UTLS_BAR_MERIDIAN_VS_HAPROXY
        line = (f"Meridian's req per proxy-CPU-second in B / HAProxy's {v:.2f} (bar "
                f"{UTLS_BAR_MERIDIAN_VS_HAPROXY:.2f}): {'met' if ok else '**NOT met**'}")
        m, h = per_cpu_by_rep("meridian-utls"), per_cpu_by_rep("haproxy-utls")
        per_rep = [m[rep] / h[rep] for rep in m if rep in h]
        if len(per_rep) > 1:
            line += f" (per repetition {min(per_rep):.2f}–{max(per_rep):.2f}"
            if min(per_rep) < UTLS_BAR_MERIDIAN_VS_HAPROXY <= max(per_rep):
                line += ": not resolved"
            line += ")"
        verdict.append(line)
    else:
        verdict.append("Meridian's B / HAProxy's B per proxy-CPU-second: not computed (a cell "
                       "is missing or has no CPU figure)")
    if any(stats[t]["errors"] for t in ("meridian", "meridian-utls", "haproxy", "haproxy-utls",
                                        "nginx", "nginx-utls") if t in stats):
        verdict.append("some cells had errors: those rows are not fair measurements")
    pair = summary + [""] + [f"- verdict: {v}." for v in verdict]

    out = ["| target | req/s median (min–max) | p50 | p99 | proxy CPU | req per proxy-CPU-s "
           "| cpu0 (origins + wrk) | other CPU | new upstream conns per cell, median (per 1,000 "
           "requests) | TLS handshakes, the proxy's count (full + resumed) | errors |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    notes, busy, disturbed = [], [], []
    for t in targets:
        st = stats[t]
        cpu = f"{st['cpu']:.0f}%" if st["cpu"] is not None else "—"
        per_cpu = k(st["per_cpu"]) if st["per_cpu"] is not None else "—"
        conns, hs = new_conns(t)
        hs = hs or "—"
        out.append(f"| {utls_label(t)} | {k(st['rps'])} ({k(st['min'])}–{k(st['max'])}) "
                   f"| {lat(st['p50'])} | {lat(st['p99'])} | {cpu} | {per_cpu} "
                   f"| {st['cpu0']:.0f}% | {st['other']:.0f}% | {conns} | {hs} "
                   f"| {st['errors']} |")
        if st["busy"]:
            busy.append(t)
        if st["other_max"] >= OTHER_BUSY:
            disturbed.append(t)
    for r in skipped:
        what = (utls_label(r["target"]) if r["target"] != "upstream-tls"
                else "the whole suite")
        out.append(f"| {what} | skipped: {r['reason']} | | | | | | | | | |")

    if not cells:
        return out, [], notes
    notes.append(
        "A = the proxy process of the other suites: HTTP/1.1 keep-alive clients (wrk -t1, as "
        "in the plain cell), clear-text keep-alive connections to the five origins. B = a "
        "second process of the same proxy from the same template, differing only in its "
        "upstream: TLS to the origins' TLS listeners (in the same origin processes), verifying "
        "their certificate (ECDSA P-256, SAN DNS:backend.test) against the CA the bench made, "
        "SNI and host name backend.test, keep-alive and session resumption on. HAProxy: "
        "`default-server ssl verify required ca-file CA sni str(backend.test) check-sni "
        "backend.test`, `http-reuse always`; nginx: `proxy_pass https://`, `proxy_ssl_verify "
        "on`, `proxy_ssl_trusted_certificate`, `proxy_ssl_name backend.test`, "
        "`proxy_ssl_server_name on`, `proxy_ssl_session_reuse on`, upstream `keepalive 128`; "
        "Meridian: the origins given by name, backend.test:PORT (its hosts file says "
        "127.0.0.1), and the region's `tls: {ca_file}` (SNI and name: the backends' name). "
        "The two cells of a proxy "
        "run next to each other, A first in odd repetitions and B first in even ones; \"per "
        "repetition\" is the range of the ratios of those pairs.")
    notes.append(
        "new upstream connections: the origins number the connections they accept (X-Conn-Id); "
        "run.sh opens one connection to each origin after the cell's warm-up and one after the "
        "measurement, and the difference less its own five is what the proxy opened during "
        "the measurement; in B each one cost a TLS handshake. The proxy's own count of its TLS "
        "handshakes with the origins: HAProxy's ssl_sess / ssl_reused_sess of the backend "
        "(`show stat`), Meridian's meridian_upstream_tls_handshakes_total (admin /metrics); "
        "nginx has none (—). The warm-up's connections are not counted: a steady load should "
        "open next to none.")
    churn = []
    for t in targets:
        conns = ints(t, "up_conns")
        reqs = sum(num(r, "requests") for r in cells if r["target"] == t)
        if conns is not None and reqs and sum(conns) / reqs * 1000 >= 1:
            churn.append(f"{t.replace('-utls', '')} {'B' if t.endswith('-utls') else 'A'} "
                         f"{sum(conns) / reqs * 1000:.1f}")
    if churn:
        notes.append(
            "new upstream connections per 1,000 requests under the steady load: "
            + "; ".join(churn) + ". In B each one is a TLS handshake (resumed where the proxy "
            "resumes sessions) that the proxy's CPU pays."
            )
    origins_check = [c for c in checks if c["target"] == "origins"]
    for c in origins_check:
        if int(c["failed"]):
            notes.append(f"check: **the origins' TLS listeners failed {c['failed']} of "
                         f"{c['checked']} checks**: {c['detail']}.")
        else:
            notes.append("check: every origin's TLS listener answered 200 to curl verifying "
                         "backend.test against the bench's CA, and failed a check of another "
                         "name.")
    if busy:
        notes.append(f"{', '.join(busy)}: cpu0 (wrk + origins, which also do the origins' side "
                     f"of TLS in B) was at least {CPU0_BUSY:.0f}% busy in some cells: the "
                     "client side limits req/s; compare by req per proxy-CPU-second.")
    if disturbed:
        notes.append(f"other CPU reached {OTHER_BUSY:.0f}% or more in cells of "
                     f"{', '.join(disturbed)} (kept after the retries ran out): rerun.")
    if redone:
        which = ", ".join(f"{r['target']} rep {r['rep']}" for r in redone)
        notes.append(f"{len(redone)} upstream-tls cell(s) disturbed by other processes (over "
                     f"the OTHER_MAX share of CPU) were measured again: {which}.")
    if any(stats[t]["errors"] for t in targets):
        notes.append("errors = non-2xx/3xx responses + socket errors reported by wrk, over all "
                     "cells: a target with errors is not measured fairly (in B, a 502 would "
                     "mean the TLS connection to the origin failed).")
    return out, pair, notes


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

    stats = cell_stats(cells, order)
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
        rss = idle_cell(idle.get(t))
        out.append(f"| {t} | {k(s['rps'])} ({k(s['min'])}–{k(s['max'])}) | {lat(s['p50'])} "
                   f"| {lat(s['p99'])} | {cpu} | {per_cpu} | {vs_rps} | {vs_cpu} "
                   f"| {s['cpu0']:.0f}% | {s['other']:.0f}% | {rss} | {s['errors']} |")
    for t, i in idle.items():
        if t not in stats:  # the h1 suite did not run
            out.append(f"| {t} | — | | | | | | | | | {idle_cell(i)} | |")
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
    meta = {}
    try:
        with open(f"{run}/meta.txt") as f:
            text = f.read()
        if " x openssl s_time" in text:
            meta["hs_clients"] = text.split(" x openssl s_time")[0].rsplit(" ", 1)[-1]
    except FileNotFoundError:
        pass
    tls_out, tls_notes = tls_report(run, meta)
    geo_out, geo_pair, geo_notes = geo_report(run)
    budget_out, budget_pair, budget_notes = budget_report(run)
    utls_out, utls_pair, utls_notes = utls_report(run)
    if out[2:]:  # the plain HTTP/1.1 table, unless that suite did not run
        print("\n".join(out))
        print()
        for n in notes:
            print(f"- {n}")
    if geo_out:
        if out[2:]:
            print()
        print("### GeoIP routing (HTTP/1.1 keep-alive, X-Forwarded-For from a trusted peer, "
              "large database)")
        print()
        if geo_pair:
            print("Routing on / off, per client population (the issue's bar: routing costs at "
                  f"most {100 - GEO_BAR * 100:.0f}% of requests per proxy-CPU-second):")
            print()
            print("\n".join(geo_pair))
            print()
            print("Every cell, per population:")
            print()
        print("\n".join(geo_out))
        print()
        for n in geo_notes:
            print(f"- {n}")
    if budget_out:
        if out[2:] or geo_out:
            print()
        print("### Request budget (rate_limit on Redis, budget far above the load)")
        print()
        if budget_pair:
            print("HTTP/1.1 keep-alive, rate_limit on / off (the issue's bars: at least "
                  f"{BUDGET_BAR * 100:.0f}% of the unlimited requests per proxy-CPU-second, at "
                  f"most one Redis command per {BUDGET_REDIS_BAR} admitted requests):")
            print()
            print("\n".join(budget_pair))
            print()
            print("Every cell:")
            print()
        print("\n".join(budget_out))
        print()
        for n in budget_notes:
            print(f"- {n}")
    if utls_out:
        if out[2:] or geo_out or budget_out:
            print()
        print("### Upstream TLS (HTTP/1.1 keep-alive clients; clear-text (A) or TLS (B) "
              "keep-alive connections to the origins)")
        print()
        if utls_pair:
            print("Per proxy, A and B (the issue's bars: Meridian's B / A per proxy-CPU-second "
                  "no worse than the best peer's, and Meridian's req per proxy-CPU-second in B "
                  f"at least {UTLS_BAR_MERIDIAN_VS_HAPROXY:.1f}x HAProxy's):")
            print()
            print("\n".join(utls_pair))
            print()
            print("Every cell:")
            print()
        print("\n".join(utls_out))
        print()
        for n in utls_notes:
            print(f"- {n}")
    if tls_out:
        if out[2:] or geo_out or budget_out or utls_out:
            print()
        print("### TLS termination and HTTP/2 (TLS 1.3, ECDSA P-256; upstream plain HTTP/1.1)")
        print()
        print("\n".join(tls_out))
        print()
        for n in tls_notes:
            print(f"- {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
