"""The autoscaler on one machine: fake GPU worker nodes come up for a search that asks for GPUs, then go.

    python scripts/autoscaler_demo.py --work runs/autoscaler [--trials 2] [--out runs/autoscaler/nodes.tsv]

Starts a head with Ray's fake multi-node provider (configs/cluster/local-fake.yaml, derived from
configs/cluster/aws-gpu.yaml; `RAY_FAKE_CLUSTER=1 ray start --head --autoscaling-config=...`, as
Ray's "Testing Autoscaling Locally" page does: `ray up` is for the docker variant), runs a tiny
search with one (fake) GPU per trial against it, and logs the alive nodes every 2 s until the
idle workers are gone (idle_timeout_minutes 0.5), then stops everything it started
(scripts/local_cluster.py). Prints the times nodes came up and went down.

Measured on the 2-core dev box (other jobs running), 2 trials x 5 epochs, one fake GPU each:
the search started 13 s after the head; 2 GPU worker nodes were up at 33 s; the search ended
(exit 0) at 66 s; both nodes were gone at 91 s (idle_timeout_minutes 0.5). Times are +-5 s:
each poll is a fresh client process.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import fault_scenarios as fs  # noqa: E402
import local_cluster as lc  # noqa: E402

NODES = (
    "import ray, sys; ray.init(); "
    "print(sum(n['Alive'] for n in ray.nodes()) - 1, int(ray.cluster_resources().get('GPU', 0)))"
)


def count_nodes(env: dict) -> tuple[int, int] | None:
    """(alive worker nodes, GPUs in the cluster), from a short-lived client."""
    out = subprocess.run([sys.executable, "-c", NODES], env=env, capture_output=True, text=True, timeout=60)
    try:
        workers, gpus = out.stdout.split()[-2:]
        return int(workers), int(gpus)
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--work", type=Path, required=True, help="scratch folder (data, cluster, storage, logs)"
    )
    parser.add_argument("--trials", type=int, default=2, help="trials, one fake GPU each (default 2)")
    parser.add_argument("--out", type=Path, help="node-count log, TSV (default WORK/nodes.tsv)")
    parser.add_argument(
        "--linger", type=float, default=150, help="seconds to wait for scale-down after the search"
    )
    args = parser.parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    prep = fs.prepare(work)
    port = lc.free_port()
    config = yaml.safe_load((REPO / "configs" / "cluster" / "local-fake.yaml").read_text())
    config["provider"]["gcs_address"] = f"127.0.0.1:{port}"
    scaling = work / "autoscaling.yaml"
    scaling.write_text(yaml.safe_dump(config))
    head_env = {"RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1"}
    t0 = time.time()
    state = lc.start(
        work / "cluster", workers=0, gpus=0, cpus=0, head_cpus=0,
        head_args=(f"--autoscaling-config={scaling}",), head_env=head_env, port=port,
    )  # fmt: skip
    env = {**lc.os.environ, **lc.client_env(state)}
    rows, events, last = [], [], None
    search = None
    try:
        search = fs.Search(
            work,
            "autoscale",
            fs.write_config(work, prep, "autoscale", samples=args.trials, gpu=1),
            state["address"],
        )
        t_search, t_end = time.time() - t0, None
        while True:
            now = time.time() - t0
            counted = count_nodes(env)
            if counted is not None:
                rows.append((round(now, 1), *counted))
                if counted[0] != last:
                    events.append(f"{now:6.1f} s  {counted[0]} worker nodes, {counted[1]} GPUs")
                    print(events[-1], flush=True)
                    last = counted[0]
            if t_end is None and search.proc.poll() is not None:
                t_end = now
                events.append(f"{now:6.1f} s  search ended (exit {search.proc.returncode})")
                print(events[-1], flush=True)
            if t_end is not None and (last == 0 or now - t_end > args.linger):
                break
            if now > 900:
                break
            time.sleep(2)
    finally:
        if search is not None and search.proc.poll() is None:
            search.kill(15)
            search.wait(timeout=60)
        killed = lc.stop(work / "cluster")
        left = lc.cluster_processes(state)
    out = args.out or work / "nodes.tsv"
    out.write_text("seconds\tworker_nodes\tgpus\n" + "".join(f"{t}\t{n}\t{g}\n" for t, n, g in rows))
    print(
        f"search started at {t_search:.1f} s; node log {out}; stopped ({killed} needed SIGKILL, {len(left)} left)"
    )
    return 0 if any(n > 0 for _, n, _ in rows) and last == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
