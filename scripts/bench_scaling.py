#!/usr/bin/python3
"""One call on every core (issue 27): one Compress of a whole 64 MiB Llama-shaped cache over
shared memory, on a server with 1 worker and on one with 2, alternated.

    /usr/bin/python3 scripts/bench_scaling.py BUILD_DIR [CODEC] [OUT_DIR]

The cache (kvcomp generate: 16 layers x K/V of [8 heads, 1024 tokens, 128 dim] FP16, 64 MiB;
LAYERS and TOKENS change it) lives in a region, and the frames are written to another, so the
call's time is the server's work. ROUNDS (default 5) rounds, each starting both servers' runs in turn (the order swapped
every round); each run times CALLS (default 3) calls after one warm-up and keeps the median.
Speed-up = median 1-worker time / median 2-worker time. The server's CPU time per call (mean)
(utime + stime from /proc) over its wall time says how many cores it had: on a machine shared
with other work, the second worker waits for a core. The cores other processes took during
each call (the machine's busy time less the server's and this client's) are reported too.
The servers run with their own allocator settings (server/main.cc: memory kept from call to
call), as deployed; a GLIBC_TUNABLES in the environment is reported. After its calls each
server rests IDLE_SECONDS (default 6), and its anonymous RSS (its own memory, not the regions)
is reported before and after.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

build = sys.argv[1] if len(sys.argv) > 1 else "build"
codec = sys.argv[2] if len(sys.argv) > 2 else "lossless"
out_dir = sys.argv[3] if len(sys.argv) > 3 else os.path.join(build, "bench-service")
rounds = int(os.environ.get("ROUNDS_SCALING", os.environ.get("ROUNDS", "5")))
calls = int(os.environ.get("CALLS", "3"))
idle_seconds = float(os.environ.get("IDLE_SECONDS", "6"))  # then the server's resting RSS
layers, tokens = os.environ.get("LAYERS", "16"), os.environ.get("TOKENS", "1024")
sys.path.insert(0, os.path.join(build, "client", "python"))
import kvcomp  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def anon_rss_mib(pid):  # the server's own memory, without the shared regions it maps
    with open(f"/proc/{pid}/status") as f:
        return [int(line.split()[1]) / 1024 for line in f if line.startswith("RssAnon:")][0]


def machine_busy_seconds():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:3]) + sum(fields[5:8])) / TICKS  # user nice system, irq softirq steal


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system


def run(workers, arrays, tmp):
    sock, ready = os.path.join(tmp, f"shm-{workers}"), os.path.join(tmp, f"ready-{workers}")
    for p in (sock, ready):
        if os.path.exists(p):
            os.unlink(p)
    server = subprocess.Popen(
        [os.path.join(build, "server", "kvcomp-server"), "--listen", "127.0.0.1:0",
         "--ready-file", ready, "--workers", str(workers), "--shm-socket", sock,
         "--log-level", "warn"])
    try:
        for _ in range(200):
            if os.path.exists(ready) and os.path.getsize(ready) > 0:
                break
            time.sleep(0.05)
        addr = [line.split("=", 1)[1] for line in open(ready).read().split()
                if line.startswith("grpc=")][0]
        raw = sum(a.nbytes for a in arrays.values())
        with kvcomp.Client(addr, shm_socket=sock, timeout=600) as c:
            region_in = c.shared_memory("in", raw + 64 * len(arrays))
            region_out = c.shared_memory("out", raw + raw // 4 + (1 << 20))
            placed = {name: region_in.put(a) for name, a in arrays.items()}
            c.compress(placed, codec=codec, out=region_out)  # warm-up
            walls, cpus, others = [], [], []
            for _ in range(calls):
                busy0, own0 = machine_busy_seconds(), own_cpu_seconds()
                cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
                result = c.compress(placed, codec=codec, out=region_out)
                walls.append(time.perf_counter() - t0)
                cpus.append(cpu_seconds(server.pid) - cpu0)
                # What other processes took meanwhile (the machine is shared), in cores.
                others.append(max(0.0, machine_busy_seconds() - busy0 - cpus[-1] -
                                  (own_cpu_seconds() - own0)) / walls[-1])
            ratio = result.totals.ratio
            busy_rss = anon_rss_mib(server.pid)
            time.sleep(idle_seconds)  # the trimmer hands free memory back every 5 s
            idle_rss = anon_rss_mib(server.pid)
            region_in.close()
            region_out.close()
        # CPU as the calls' mean: /proc counts it in 10 ms ticks, a tenth of a call.
        return {"wall_s": statistics.median(walls), "cpu_s": sum(cpus) / len(cpus),
                "rss_after_calls_mib": busy_rss, "rss_idle_mib": idle_rss,
                "other_cores": max(others), "ratio": ratio, "raw_bytes": raw}
    finally:
        server.terminate()
        server.wait()


def main():
    with tempfile.TemporaryDirectory(prefix="kvcomp-scaling-") as tmp:
        cache = os.path.join(tmp, "cache.npz")
        subprocess.run([os.path.join(build, "client", "kvcomp"), "generate", "-o", cache,
                        "--layers", layers, "--kv-heads", "8", "--head-dim", "128", "--tokens",
                        tokens, "--dtype", "fp16", "--quiet"], check=True)
        arrays = {k: v for k, v in np.load(cache).items() if k.startswith("layer")}
        runs = {1: [], 2: []}
        for r in range(rounds):
            for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
                runs[workers].append(run(workers, arrays, tmp))
    med = {w: statistics.median(x["wall_s"] for x in v) for w, v in runs.items()}
    speedups = [a["wall_s"] / b["wall_s"] for a, b in zip(runs[1], runs[2])]
    summary = {
        "codec": codec, "cores": os.cpu_count(), "loadavg_1m": os.getloadavg()[0],
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
        "raw_bytes": runs[1][0]["raw_bytes"], "ratio": runs[1][0]["ratio"], "runs": runs,
        "median_wall_s": med, "speedup_of_medians": med[1] / med[2],
        "speedup_per_round": speedups,
        "cores_used": {w: statistics.median(x["cpu_s"] / x["wall_s"] for x in v)
                       for w, v in runs.items()},
    }
    json.dump(summary, open(os.path.join(out_dir, "scaling.json"), "w"), indent=2)
    gb = summary["raw_bytes"] / 1e9
    print(f"one call, {summary['raw_bytes'] >> 20} MiB cache, codec {codec}, over shm, "
          f"{rounds} rounds x {calls} calls, load average {summary['loadavg_1m']:.2f}, "
          f"GLIBC_TUNABLES={summary['glibc_tunables']!r}")
    for w in (1, 2):
        print(f"  {w} worker(s): median {med[w] * 1e3:.0f} ms ({gb / med[w]:.3f} GB/s), "
              f"server cores used {summary['cores_used'][w]:.2f}, CPU "
              f"{statistics.median(x['cpu_s'] for x in runs[w]) / gb:.2f} s / GB, server RSS "
              f"{max(x['rss_after_calls_mib'] for x in runs[w]):.0f} MiB after the calls, "
              f"{max(x['rss_idle_mib'] for x in runs[w]):.0f} MiB {idle_seconds:.0f} s later")
    print(f"  speed-up 1 -> 2 workers: {summary['speedup_of_medians']:.2f} (target >= 1.8); "
          f"per round {', '.join(f'{s:.2f}' for s in speedups)}")
    print("  most cores other processes took during a call, per round (1 worker / 2 workers): " +
          ", ".join(f"{a['other_cores']:.2f}/{b['other_cores']:.2f}"
                    for a, b in zip(runs[1], runs[2])))


main()
