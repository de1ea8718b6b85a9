#!/usr/bin/env python3
"""Dask distributed on the shape of ragnode's scheduling benchmark.

Run by scenarios/bench (sched.go) for the side-by-side row of BENCHMARKS.md:
W worker processes with 4 threads each (the 4 slots of a ragnode node with
--gpus 1 --task-gpus 0.25), N tasks that each sleep L, submitted at once
(client.map); T is from the first submit to the last completion; efficiency
= (N * L / (4 * W)) / T, as for ragnode. Prints one JSON object.

Two setups (--setup):
  standalone  Dask at its strongest: a `dask scheduler` process and W
              `dask worker --no-nanny --nthreads 4 --resources GPU=1`
              processes, tasks submitted with resources={"GPU": 0.25}: the
              same quarter-card shape as ragnode's slots, no nanny hop.
  local       LocalCluster(processes=True) with nannies (the weaker row
              earlier tables compared against).

Usage: sched.py --setup standalone --workers 3 --tasks 2000 --latency-ms 50
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def work(i, latency):
    time.sleep(latency)
    return i


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--tasks", type=int, required=True)
    ap.add_argument("--latency-ms", type=float, required=True)
    ap.add_argument("--setup", choices=["standalone", "local"], default="standalone")
    a = ap.parse_args()
    try:
        import distributed
        from distributed import Client, LocalCluster, as_completed
    except ImportError as e:
        print(json.dumps({"error": "distributed not importable: %s" % e}))
        return 0
    lat = a.latency_ms / 1000.0
    procs, cluster, resources = [], None, None
    if a.setup == "standalone":
        # Loopback only, no dashboard: nothing leaves this machine. The
        # scheduler file carries the address the workers and client use.
        tmp = tempfile.mkdtemp(prefix="dask-bench-")
        sfile = os.path.join(tmp, "scheduler.json")
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                       "--port", "0", "--no-dashboard", "--scheduler-file", sfile],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for _ in range(600):
            if os.path.exists(sfile) and os.path.getsize(sfile) > 0:
                break
            time.sleep(0.05)
        for _ in range(a.workers):
            procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", sfile,
                                           "--no-nanny", "--nthreads", str(a.threads), "--resources", "GPU=1",
                                           "--host", "127.0.0.1", "--no-dashboard"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        client = Client(scheduler_file=sfile)
        resources = {"GPU": 1.0 / a.threads}
    else:
        cluster = LocalCluster(n_workers=a.workers, threads_per_worker=a.threads, processes=True,
                               host="127.0.0.1", dashboard_address=None)
        client = Client(cluster)
    client.wait_for_workers(a.workers)
    # Warm the workers (imports, first task) outside the timed run, as the
    # ragnode rows start timing on a cluster that is up and registered.
    client.gather(client.map(work, range(a.workers * a.threads), latency=0.0, pure=False, resources=resources))
    t0 = time.time()
    futs = client.map(work, range(a.tasks), latency=lat, pure=False, resources=resources)
    submitted = time.time() - t0
    done = 0
    for _ in as_completed(futs):
        done += 1
    T = time.time() - t0
    ideal = a.tasks * lat / (a.workers * a.threads)
    print(json.dumps({"version": distributed.__version__, "setup": a.setup, "workers": a.workers, "slots": a.workers * a.threads,
                      "tasks": a.tasks, "completed": done, "submit_s": submitted, "T_s": T,
                      "ideal_s": ideal, "efficiency": ideal / T}))
    client.close()
    if cluster is not None:
        cluster.close()
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
