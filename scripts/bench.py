#!/usr/bin/env python3
"""Measure tokmon against the budgets of the design and write BENCHMARKS.md.

    python3 scripts/bench.py                 # the full run: 1M and 10M-row databases
    python3 scripts/bench.py --quick         # 200k / 1M rows, to try the script itself
    python3 scripts/bench.py --work /tmp/tb  # keep (and reuse) the generated databases there

It builds the release binary, generates the databases with `tokmon demo`, then measures, in
one run: `report` against the sqlite3 shell running the equivalent GROUP BY; the first read of
a foreign tracker's database (bot and desktop trackers, 1M rows, no rollup cache yet) against
the same; the monitor's time to first frame and to complete numbers, insert-to-screen latency
with another process writing 100 rows a second, idle CPU, peak resident memory and bytes
written to the terminal per update (these come from the `monitor` benchmark,
`benches/monitor.rs`, run in tmux), and its first all-time numbers on both foreign databases
(against the sqlite3 GROUP BY by agent, provider and model, which gives the numbers it shows);
and the import benchmark (`benches/import.rs`), which compares `tokmon import` with ccusage on
a realistic and a compact corpus, and times a re-import after one appended line.

ccusage (pinned below) is installed with npm into a cache directory the first time
(`--ccusage-dir`, default ~/.cache/tokmon-bench); `--no-import` skips the import benchmark.
Every step has a time limit, so a run always ends (a full run takes about 15 minutes on two
cores). Needs sqlite3, tmux and /usr/bin/time (Debian packages sqlite3, tmux, time), and npm
for ccusage. Never run in CI.
"""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "tokmon")


def secs(v):
    """A duration as people read it: milliseconds below a second."""
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"


CCUSAGE_VERSION = "20.0.24"
# Time limits of the steps, so the whole run is bounded.
STEP_TIMEOUT = 600
IMPORT_TIMEOUT = 1500


def run(cmd, timeout=STEP_TIMEOUT, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout, **kw)


def timed(cmd, runs=3, before=None):
    """Median wall time, the largest peak RSS (MB) and the median CPU time (user + system) of
    `runs` runs of a command; `before` is called before each run."""
    walls, rss, cpus = [], [], []
    for _ in range(runs):
        if before:
            before()
        out = subprocess.run(["/usr/bin/time", "-f", "%e %M %U %S"] + cmd, capture_output=True, text=True,
                             timeout=STEP_TIMEOUT)
        if out.returncode != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stderr}")
        wall, kb, user, system = out.stderr.strip().splitlines()[-1].split()
        walls.append(float(wall))
        rss.append(int(kb) / 1024)
        cpus.append(float(user) + float(system))
    return statistics.median(walls), max(rss), statistics.median(cpus)


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    sqlite = run(["sqlite3", "--version"]).stdout.split()[0]
    return f"{cpu}, {os.cpu_count()} cores, {mem} RAM, {platform.system()} {platform.release()}; sqlite3 shell {sqlite}"


def generate(work, name, rows, schema="native"):
    path = os.path.join(work, name)
    if os.path.exists(path):
        return path, None
    t0 = time.monotonic()
    run([BIN, "demo", "--rows", str(rows), "--out", path, "--as", schema, "--days", "90"])
    return path, time.monotonic() - t0


SUMS = ("COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cache_creation_tokens), "
        "SUM(cache_read_tokens), TOTAL(cost_usd)")


# The plain GROUP BY over a tracker's table that gives the numbers of `report --by model`.
FOREIGN_BASELINE = {
    "bot": "SELECT model, COUNT(*), SUM(input_tokens), SUM(output_tokens), TOTAL(cost_usd) "
           "FROM token_usage GROUP BY model;",
    "desktop": "SELECT model, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cache_creation_tokens), "
               "SUM(cache_read_tokens), TOTAL(estimated_cost) FROM token_usage GROUP BY model;",
}

# The plain GROUP BY that gives the numbers the monitor shows for all time: by agent, provider
# and model (it drills into any of the three).
MONITOR_BASELINE = {
    "bot": "SELECT request_type, provider, model, COUNT(*), SUM(input_tokens), SUM(output_tokens), "
           "TOTAL(cost_usd) FROM token_usage GROUP BY request_type, provider, model;",
    "desktop": "SELECT operation_type, endpoint_name, model, COUNT(*), SUM(input_tokens), SUM(output_tokens), "
               "SUM(cache_creation_tokens), SUM(cache_read_tokens), TOTAL(estimated_cost) FROM token_usage "
               "GROUP BY operation_type, endpoint_name, model;",
}


def foreign_first_read(db, flavor, cache_dir):
    """`report --range all` on a tracker's database with no rollup cache (removed before each
    run), the sqlite3 baseline, the first report that builds the cache (a 7-day range) and
    `report --range all` once the cache is there."""
    def cold():
        shutil.rmtree(cache_dir, ignore_errors=True)

    report = [BIN, "--db", db, "report", "--format", "json", "--range"]
    first = timed(report + ["all"], before=cold)
    base = timed(["sqlite3", db, FOREIGN_BASELINE[flavor]])
    build = timed(report + ["7d"], runs=1, before=cold)
    warm = timed(report + ["all"])
    return first, base, build, warm


def statusline(db, env, runs=50):
    """`tokmon statusline` as Claude Code's hook calls it (the hook's JSON on stdin, for the
    newest Claude Code session): median wall and CPU time of `runs` runs, and of `--version`
    (the process alone) for scale."""
    session = run(["sqlite3", db, "SELECT session FROM events WHERE agent = 'claude-code' "
                   "ORDER BY id DESC LIMIT 1;"]).stdout.strip()
    hook = json.dumps({"session_id": session, "model": {"id": "claude-sonnet-4-5", "display_name": "Sonnet 4.5"},
                       "workspace": {"current_dir": "/w"}})

    def median_of(cmd):
        walls, cpus = [], []
        for _ in range(runs):
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.monotonic()
            out = subprocess.run(cmd, input=hook, capture_output=True, text=True, env=env, timeout=60)
            walls.append(time.monotonic() - t0)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
        return statistics.median(walls), statistics.median(cpus), out.stdout.strip()

    line = median_of([BIN, "--db", db, "statusline"])
    version = median_of([BIN, "--version"])
    return line, version


class Tmux:
    """A private tmux server (its own socket) holding one session."""

    made = 0

    def __init__(self, env):
        # A socket of its own each time: a server just killed may still hold the last one.
        Tmux.made += 1
        self.sock = f"tokmon-bench-{os.getpid()}-{Tmux.made}"
        self.env = env

    def run(self, *args):
        return subprocess.run(["tmux", "-L", self.sock, *args], capture_output=True, text=True,
                              env=self.env, timeout=30)

    def screen(self):
        return self.run("capture-pane", "-p", "-t", "b").stdout

    def wait(self, pred, limit):
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit:
            s = self.screen()
            if pred(s):
                return True
            time.sleep(0.01)
        return False

    def kill(self):
        self.run("kill-server")


def events_shown(screen):
    head = screen.splitlines()[0] if screen else ""
    m = re.search(r"([\d,]+) events", head)
    return int(m.group(1).replace(",", "")) if m else None


def process_cpu(pid):
    """User + system CPU seconds of a running process (all its threads), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def monitor_foreign_all(db, rows, work, env):
    """The monitor on a tracker's database with no rollup cache: from the start until the
    all-time numbers are complete (all rows counted, `● live`), switching to all time (key 5)
    at the first frame, with the monitor's CPU time (all threads) by then. Also when the
    timeline (the cache, built behind) is there: the newest event time appears in the
    header."""
    shutil.rmtree(os.path.join(env["XDG_CACHE_HOME"], "tokmon"), ignore_errors=True)
    state = os.path.join(work, "state.json")
    with open(state, "w") as f:
        f.write('{"token_usage":{"used":620000,"total":1000000}}')
    tmux = Tmux(env)
    try:
        t0 = time.monotonic()
        tmux.run("-f", "/dev/null", "new-session", "-d", "-s", "b", "-x", "120", "-y", "40",
                 f"exec '{BIN}' --db '{db}' --state '{state}'")
        if not tmux.wait(lambda s: s.startswith("tokmon"), 20):
            raise SystemExit("monitor: no first frame")
        tmux.run("send-keys", "-t", "b", "5")
        pid = tmux.run("display-message", "-p", "-t", "b", "#{pane_pid}").stdout.strip()

        def complete(s):
            head = s.splitlines()[0] if s else ""
            return "│ all │" in head and "● live" in head and events_shown(s) == rows

        if not tmux.wait(complete, 120):
            raise SystemExit(f"monitor: all-time numbers never complete:\n{tmux.screen()}")
        numbers = time.monotonic() - t0
        cpu = process_cpu(pid)
        if not tmux.wait(lambda s: complete(s) and " last " in s.splitlines()[0], 300):
            raise SystemExit(f"monitor: the timeline never came:\n{tmux.screen()}")
        timeline = time.monotonic() - t0
        return numbers, cpu, timeline
    finally:
        tmux.kill()


def kept_sections(text, owned):
    """The `## ` sections of an earlier BENCHMARKS.md whose titles are not in `owned`, each as
    one block of lines (ending with a blank line)."""
    out = []
    for part in text.split("\n## ")[1:]:
        title = part.split("\n", 1)[0].strip()
        if title not in owned:
            out += ["## " + part.rstrip("\n"), ""]
    return out


def ccusage_bin(cache):
    """ccusage: `CCUSAGE_BIN` when set, else installed with npm into `cache` the first time;
    None when npm is missing."""
    if os.environ.get("CCUSAGE_BIN"):
        return os.environ["CCUSAGE_BIN"]
    prefix = os.path.join(cache, f"ccusage-{CCUSAGE_VERSION}")
    exe = os.path.join(prefix, "node_modules", "@ccusage", "ccusage-linux-x64", "bin", "ccusage")
    if not os.path.exists(exe):
        if not shutil.which("npm"):
            return None
        print(f"installing ccusage {CCUSAGE_VERSION} into {prefix} …", file=sys.stderr)
        run(["npm", "install", "--silent", "--prefix", prefix, f"ccusage@{CCUSAGE_VERSION}"])
        if not os.path.exists(exe):
            return None
    os.chmod(exe, 0o755)
    return exe


def import_bench(env, ccusage):
    """`cargo bench --bench import`: its stdout, parsed by `parse_import`."""
    e = dict(env)
    if ccusage:
        e["CCUSAGE_BIN"] = ccusage
    else:
        e["TOKMON_BENCH_NO_CCUSAGE"] = "1"
    out = run(["cargo", "bench", "--quiet", "--bench", "import"], cwd=ROOT, env=e, timeout=IMPORT_TIMEOUT)
    return out.stdout


def parse_import(text):
    """The import benchmark's JSON line when it prints one, and its Markdown table lines."""
    data = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                data = json.loads(line)
            except ValueError:
                pass
    # Each table's lines, a blank line between two tables.
    tables, prev = [], False
    for line in text.splitlines():
        is_row = line.startswith("|")
        if is_row and not prev and tables:
            tables.append("")
        if is_row:
            tables.append(line.rstrip())
        prev = is_row
    notes = [line.rstrip() for line in text.splitlines()
             if line.strip() and not line.startswith("|") and not line.strip().startswith("{")]
    return data, tables, notes


def add_import_rows(add, data):
    """The import budgets, from the import benchmark's JSON line: cold import against ccusage
    (wall and CPU), its peak memory, and the re-import after one appended line."""
    if not data:
        return

    def with_cpu(wall, cpu):
        return secs(wall) + (f" (CPU {secs(cpu)})" if cpu is not None else "")

    for c in data.get("corpora", []):
        size = f"{c['name']} corpus ({c['lines']:,} lines, {c['bytes'] / 1e6:.0f} MB)"
        ours = f"{with_cpu(c['tokmon_cold_s'], c.get('tokmon_cold_cpu_s'))}"
        rss = c.get("tokmon_cold_rss_mb")
        if c.get("ccusage_s"):
            cc_cpu = c.get("ccusage_cpu_s")
            cpu_ratio = ""
            if cc_cpu and c.get("tokmon_cold_cpu_s") is not None:
                cpu_ratio = f" (CPU {c['tokmon_cold_cpu_s'] / cc_cpu:.2f}×)"
            cc_rss = c.get("ccusage_rss_mb")
            add(f"cold `tokmon import`, {size}", "≤ 0.33× ccusage", ours,
                f"ccusage {with_cpu(c['ccusage_s'], cc_cpu)}" + (f", {cc_rss:.0f} MB" if cc_rss else ""),
                f"{c['ratio']:.2f}×{cpu_ratio}")
        else:
            add(f"cold `tokmon import`, {size}", "≤ 0.33× ccusage", ours, "ccusage not run")
        if rss is not None:
            add(f"… its peak resident memory", "≤ 100 MB", f"{rss:.1f} MB", "", f"{rss / 100:.2f}× of budget")
        add(f"re-import after one appended line, {c['name']} corpus", "≤ 50 ms",
            with_cpu(c["reimport_append_s"], c.get("reimport_append_cpu_s")), "",
            f"{c['reimport_append_s'] / 0.050:.2f}× of budget")
        if not c.get("totals_match_expected", True) or c.get("daily_match_ccusage") is False:
            print(f"import totals disagree on the {c['name']} corpus", file=sys.stderr)


def report_vs_sqlite(db, by, rng, sql, env):
    ours = timed([BIN, "--db", db, "report", "--range", rng, "--by", by, "--format", "json"])
    base = timed(["sqlite3", db, sql])
    return ours, base


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small databases, to try the script")
    ap.add_argument("--work", help="directory for the databases (kept and reused)")
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    ap.add_argument("--no-import", action="store_true", help="skip the import benchmark")
    ap.add_argument("--ccusage-dir", default=os.path.join(os.path.expanduser("~"), ".cache", "tokmon-bench"),
                    help="where ccusage is installed (once) for the import benchmark")
    args = ap.parse_args()
    # Sections this script does not write are kept: read them before the file is rewritten.
    try:
        with open(args.out) as f:
            old_text = f.read()
    except FileNotFoundError:
        old_text = ""
    started = time.monotonic()
    load_start = os.getloadavg()[0]
    small, large = (200_000, 1_000_000) if args.quick else (1_000_000, 10_000_000)
    foreign = small

    for tool in ("sqlite3", "tmux", "/usr/bin/time"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing (apt-get install sqlite3 tmux time)")
    print("building release binaries …", file=sys.stderr)
    run(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
    run(["cargo", "bench", "--no-run", "--quiet", "--bench", "monitor"], cwd=ROOT)

    work = args.work or tempfile.mkdtemp(prefix="tokmon-bench-")
    os.makedirs(work, exist_ok=True)
    # A home of its own: no agent logs of the machine's user are discovered and imported.
    os.makedirs(os.path.join(work, "home"), exist_ok=True)
    real_home = os.path.expanduser("~")
    env = dict(os.environ, CARGO_HOME=os.environ.get("CARGO_HOME", os.path.join(real_home, ".cargo")),
               RUSTUP_HOME=os.environ.get("RUSTUP_HOME", os.path.join(real_home, ".rustup")),
               HOME=os.path.join(work, "home"), XDG_CACHE_HOME=os.path.join(work, "cache"),
               XDG_DATA_HOME=os.path.join(work, "data"), XDG_CONFIG_HOME=os.path.join(work, "config"))
    os.environ.update(env)
    print(f"generating databases in {work} …", file=sys.stderr)
    db_small, _ = generate(work, f"native-{small}.db", small)
    db_large, gen_large = generate(work, f"native-{large}.db", large)
    db_bot, _ = generate(work, f"bot-{foreign}.db", foreign, "bot")
    db_desktop, _ = generate(work, f"desktop-{foreign}.db", foreign, "desktop")

    rows = []  # (what, budget, measured, baseline, ratio)

    def add(what, budget, measured, baseline="", ratio=""):
        rows.append((what, budget, measured, baseline, ratio))
        print(f"{what}: {measured} {baseline} {ratio}", file=sys.stderr)

    def write(done, import_out=None):
        """Write the file with the rows measured so far (`done`: the whole run)."""
        elapsed = time.monotonic() - started

        lines = [
            "# Benchmarks",
            "",
            f"Written by `python3 scripts/bench.py{' --quick' if args.quick else ''}` on "
            f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, all figures from that one run.",
            "",
        ] + ([] if done else [
            "**Incomplete:** the run had not finished when this was written (the script writes this file "
            "after each step); the rows below are those measured up to then.",
            "",
        ]) + [
            f"**Machine:** {machine()}. Shared and noisy: figures are indicative, not exact.",
            "",
            "**Method.** Databases are generated by `tokmon demo` (realistic agents, models, sessions over "
            "90 days). Command times are the median of three runs (`/usr/bin/time`), with peak RSS. The baseline "
            "is the `sqlite3` shell running the plain GROUP BY over the events that gives the same numbers "
            "(`/usr/bin/time` resolves 10 ms, so the shortest commands read as 0 ms). "
            "The monitor runs in a private tmux server (`benches/monitor.rs`): first frame and complete numbers "
            "are read from the screen, latency is from a row's commit by another process (writing 100 rows/s) to "
            "its total on screen, idle CPU from /proc over 10 s with nothing changing, memory is VmHWM, and "
            "terminal bytes are counted with `tmux pipe-pane`. A foreign tracker's database is read with its "
            "rollup cache removed before each run; the monitor's first all-time numbers are timed from its "
            "start, switching to all time at the first frame, to all rows counted on screen, with the "
            "monitor's CPU time (all its threads) at that moment; their baseline is the sqlite3 GROUP BY "
            "by agent, provider and model, the numbers the monitor shows. The import rows come from "
            "`cargo bench --bench import` (section below), run in the same script.",
            "",
            f"The run took {elapsed / 60:.0f} minutes; every step has a time limit, so a run always ends. "
            f"Load average (1 min) at its start {load_start:.1f}, at its end {os.getloadavg()[0]:.1f}: on a "
            "busy machine wall times stretch, so the foreign reads also show CPU time (user + system).",
            "",
            "| what | budget | measured | baseline | ratio |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows]
        lines += ["", "Hot paths (`cargo bench --bench hot_paths`) are measured with divan and not repeated here.", ""]
        if import_out is not None:
            _, tables, notes = import_out
            lines += ["## Import", "",
                      f"From `cargo bench --bench import` in the same run (ccusage {CCUSAGE_VERSION}; "
                      "method in `benches/import.rs`):", ""]
            lines += tables + [""]
            lines += [f"- {n.strip()}" for n in notes] + [""]
        elif done:
            lines += ["The import benchmark was skipped (`--no-import`).", ""]
        else:
            lines += ["The import benchmark had not run yet.", ""]
        lines += [
            "Notes on the figures:",
            "",
            "- The rollups make grouped reads by model, agent and provider cheaper than the plain GROUP BY;",
            "  groupings the rollup does not keep (session, project, user, channel, operation) read every event",
            "  once, summing groups in memory.",
            "- A foreign tracker's database is first read without its rollup cache: an all-time answer needs no",
            "  timestamp (rows whose time cannot be read count in all time, as they do in the cache), so it is",
            "  summed straight from the rows. The cache is built by the first report over a time range (or, in the",
            "  monitor, on a thread of its own once the first numbers are shown); later reports read it. In the",
            "  monitor, switching range stops a read still in progress, and the 5-hour block gauge waits for the",
            "  cache on a foreign database.",
            "",
        ]
        # Sections this script does not write (PostgreSQL, measured by `cargo bench --bench pg`
        # with a server of its own, and any other `## ` section added by hand or by another
        # benchmark) are kept as they were.
        lines += kept_sections(old_text, {"Import"})
        with open(args.out, "w") as f:
            f.write("\n".join(lines))
        print(f"wrote {args.out}", file=sys.stderr)

    if gen_large is not None:
        add(f"`tokmon demo --rows {large:,}`", "well under 60 s", f"{gen_large:.1f} s")

    now_ms = int(time.time() * 1000)
    cases = [
        (db_small, "model", "all", f"SELECT model, {SUMS} FROM events GROUP BY model;", f"{small:,} rows"),
        (db_large, "model", "all", f"SELECT model, {SUMS} FROM events GROUP BY model;", f"{large:,} rows"),
        (db_large, "session", "all", f"SELECT session, {SUMS} FROM events GROUP BY session;", f"{large:,} rows"),
        (db_small, "agent", "24h",
         f"SELECT agent, {SUMS} FROM events WHERE ts >= {now_ms - 86_400_000} GROUP BY agent;", f"{small:,} rows"),
    ]
    for db, by, rng, sql, size in cases:
        (ours, ours_mb, _), (base, _, _) = report_vs_sqlite(db, by, rng, sql, env)
        add(f"`report --range {rng} --by {by}`, {size}", "≤ 1.5× sqlite3",
            f"{secs(ours)}, {ours_mb:.0f} MB", f"sqlite3 {secs(base)}", f"{ours / max(base, 0.005):.2f}×")
    (sl_wall, sl_cpu, sl_line), (v_wall, _, _) = statusline(db_small, env)
    add(f"`statusline` (Claude Code's hook: session, today, active block), {small:,} rows, median of 50",
        "≤ 20 ms", f"{secs(sl_wall)} (CPU {secs(sl_cpu)}; `--version` alone {secs(v_wall)})", "",
        f"{sl_wall / 0.020:.2f}× of budget")
    if "left)" not in sl_line:
        print(f"statusline showed no active block: {sl_line}", file=sys.stderr)
    # A foreign tracker's database: the first report reads it without a rollup cache; a range
    # report builds the cache, which later reports read.
    cache_dir = os.path.join(env["XDG_CACHE_HOME"], "tokmon")

    def cpu(t):
        return f"{secs(t[0])} (CPU {secs(t[2])})"

    def ratio(t, base):
        return f"{t[0] / max(base[0], 0.005):.2f}× (CPU {t[2] / max(base[2], 0.005):.2f}×)"

    trackers = (("bot", db_bot, "bot tracker"), ("desktop", db_desktop, "desktop tracker"))
    for flavor, db, name in trackers:
        first, base, build, warm = foreign_first_read(db, flavor, cache_dir)
        add(f"`report --range all`, {name} DB, {foreign:,} rows, first read (no rollup cache)", "≤ 1.5× sqlite3",
            f"{cpu(first)}, {first[1]:.0f} MB", f"sqlite3 {cpu(base)}", ratio(first, base))
        add("… `report --range 7d` on it, building the rollup cache", "", cpu(build), f"sqlite3 {cpu(base)}",
            ratio(build, base))
        add("… `report --range all` once the rollup cache is built", "≤ 1.5× sqlite3", cpu(warm),
            f"sqlite3 {cpu(base)}", ratio(warm, base))
    write(False)
    print("measuring the monitor on foreign databases …", file=sys.stderr)
    for flavor, db, name in trackers:
        base = timed(["sqlite3", db, MONITOR_BASELINE[flavor]])
        numbers, mon_cpu, timeline = monitor_foreign_all(db, foreign, work, env)
        measured = secs(numbers) + (f" (CPU {secs(mon_cpu)}, all threads)" if mon_cpu is not None else "")
        cpu_ratio = f" (CPU {mon_cpu / max(base[2], 0.005):.2f}×)" if mon_cpu is not None else ""
        add(f"monitor: first all-time numbers complete (from its start, all rows counted), {name} DB, "
            f"{foreign:,} rows, no rollup cache", "≤ 1.5× sqlite3", measured,
            f"sqlite3 {cpu(base)} (GROUP BY agent, provider, model)",
            f"{numbers / max(base[0], 0.005):.2f}×{cpu_ratio}")
        add("… its timeline (rollup cache built behind the numbers)", "", secs(timeline))

    # The monitor, driven in tmux by benches/monitor.rs; it prints one JSON object.
    write(False)
    print("measuring the monitor …", file=sys.stderr)
    mon = {}
    for db, label in ((db_small, "small"), (db_large, "large")):
        out = run(["cargo", "bench", "--quiet", "--bench", "monitor"], cwd=ROOT,
                  env=dict(env, TOKMON_BENCH_DB=db, TOKMON_BENCH_JSON="1"))
        mon[label] = json.loads(out.stdout.strip().splitlines()[-1])
    def vs(measured, budget):
        return f"{measured / budget:.2f}× of budget"

    for label, size in (("small", small), ("large", large)):
        m = mon[label]
        add(f"monitor: first frame, {size:,} rows", "≤ 100 ms", f"{m['first_frame_ms']:.0f} ms", "",
            vs(m['first_frame_ms'], 100))
    add(f"monitor: numbers complete, 24 h range, {small:,} rows", "≤ 300 ms",
        f"{mon['small']['complete_24h_ms']:.0f} ms", "", vs(mon['small']['complete_24h_ms'], 300))
    add(f"monitor: numbers complete, all time, {large:,} rows", "≤ 1 s",
        f"{mon['large']['complete_all_ms']:.0f} ms", "", vs(mon['large']['complete_all_ms'], 1000))
    m = mon["large"]
    add(f"monitor ({large:,} rows): row committed by another process → on screen, writer at 100 rows/s",
        "p50 ≤ 100 ms, p99 ≤ 300 ms",
        f"p50 {m['latency_p50_ms']:.0f} ms, p99 {m['latency_p99_ms']:.0f} ms ({m['latency_samples']} rows)", "",
        f"{vs(m['latency_p50_ms'], 100)} / {vs(m['latency_p99_ms'], 300)}")
    add("monitor: idle CPU, nothing changing (10 s)", "≤ 1 % of a core", f"{m['idle_cpu_pct']:.2f} %", "",
        vs(m['idle_cpu_pct'], 1))
    add(f"monitor: peak resident memory, {large:,} rows", "≤ 50 MB", f"{m['peak_rss_mb']:.1f} MB", "",
        vs(m['peak_rss_mb'], 50))
    add("monitor: bytes written to the terminal per update (one new row)", "small",
        f"{m['bytes_per_update']:.0f} B")

    # The import benchmark (benches/import.rs) against ccusage; it prints its own tables, and
    # its budgets go into the table above.
    import_out = None
    if not args.no_import:
        write(False)
        print("running the import benchmark …", file=sys.stderr)
        ccusage = ccusage_bin(args.ccusage_dir)
        import_env = dict(env, TOKMON_BENCH_DIR=os.path.join(work, "import"))
        if args.quick:
            import_env.update(TOKMON_BENCH_REALISTIC_LINES="20000", TOKMON_BENCH_LINES="100000")
        import_out = parse_import(import_bench(import_env, ccusage))
        add_import_rows(add, import_out[0])
    write(True, import_out)


if __name__ == "__main__":
    main()
