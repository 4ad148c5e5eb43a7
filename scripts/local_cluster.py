"""A real multi-process Ray cluster on one machine: a head and N worker nodes with declared GPUs.

    python scripts/local_cluster.py start  --dir runs/cluster --workers 2 --gpus-per-worker 1
    python scripts/local_cluster.py status --dir runs/cluster
    python scripts/local_cluster.py add-node --dir runs/cluster      # one more worker node
    python scripts/local_cluster.py stop   --dir runs/cluster

Each node is one `ray start --block` process in its own session; DIR/cluster.json records their
PIDs, ports and the Ray temp dir, and every process they spawn (GCS, raylets, agents, workers, job
drivers) inherits a marker variable naming this cluster, so `stop` ends exactly those processes and
never another Ray on the box (unlike `ray stop`, which kills every Ray of this user).

The dashboard binds to 127.0.0.1; the GCS, raylets and agents listen on
this machine's private IP, as on a real cluster (Ray allows no loopback-only multi-node cluster:
see LOOPBACK_ONLY). Token auth is on (RAY_AUTH_MODE=token; the token is ~/.ray/auth_token, made with `ray get-auth-token
--generate` when missing). Clients need the same two variables, which `env` prints:

    eval "$(python scripts/local_cluster.py env --dir runs/cluster)"
    python -m tuning --config configs/demo.yaml --address "$RAY_ADDRESS" --gpus-per-trial 1
    ray job submit --address "$RAY_DASHBOARD" --working-dir . --runtime-env configs/cluster/job-runtime-env.yaml \
        -- python -m tuning --config configs/demo.yaml --gpus-per-trial 1

Declared GPUs are only a resource count: on a machine without CUDA, trials that ask for a GPU
train on the CPU (train.device auto).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

MARKER = "FACEPARSE_LOCAL_CLUSTER"  # inherited by every process of the cluster: its state file
STATE = "cluster.json"
# Ray rewrites a loopback node or head address to this machine's routable IP
# (services.resolve_ip_for_localhost), and refuses worker nodes when that rewrite is switched off
# (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, scripts.py "Multi-node Ray clusters are not supported"):
# a multi-node cluster listens on the private interface. This variable must not leak in from a
# single-node run (tuning.search sets it for those).
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
RAY = str(Path(sys.executable).with_name("ray"))
# Unix socket paths under a node's temp dir (root/NAME/session_.../sockets/...) stay below 107 bytes.
MAX_TEMP_DIR = 32


def free_port() -> int:
    """A TCP port nobody listens on now (127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token_env() -> dict[str, str]:
    """RAY_AUTH_MODE=token, making the default token file when no token is given."""
    if not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
        if not (Path.home() / ".ray" / "auth_token").is_file():
            subprocess.run([RAY, "get-auth-token", "--generate"], check=True, capture_output=True)
    return {"RAY_AUTH_MODE": "token"}


def client_env(state: dict) -> dict[str, str]:
    """What a driver or `ray job submit` needs to reach this cluster."""
    return {
        "RAY_ADDRESS": state["address"],
        "RAY_DASHBOARD": state["dashboard"],
        **token_env(),
    }


def load_state(folder: Path) -> dict:
    path = Path(folder) / STATE
    if not path.is_file():
        raise SystemExit(f"error: {path} not found: no cluster was started with --dir {folder}")
    return json.loads(path.read_text())


def save_state(folder: Path, state: dict) -> None:
    path = Path(folder) / STATE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)


def _temp_dir(folder: Path) -> str:
    own = (folder / "ray").resolve()
    if len(str(own)) <= MAX_TEMP_DIR:
        own.mkdir(parents=True, exist_ok=True)
        return str(own)
    return tempfile.mkdtemp(prefix="rlc-")  # the folder's path is too long for Ray's sockets


def _launch(state: dict, folder: Path, name: str, args: list[str], extra_env: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", LOOPBACK_ONLY)}
    env.update(token_env(), **(extra_env or {}), **{MARKER: state["marker"]})
    # `python` in a job's entrypoint is this interpreter, as on a cluster built from one image
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    log = folder / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        RAY,
        "start",
        "--block",
        # One temp dir per node, as on separate machines: nodes sharing one would share the
        # unpacked runtime_env packages, and a node's agent deletes a job's working_dir (the job
        # driver's cwd on the head) when that node's last trial using it ends.
        f"--temp-dir={state['temp_dir']}/{name}",
        f"--dashboard-agent-listen-port={free_port()}",  # fixed 52365 by default: one per box
        "--disable-usage-stats",
        *args,
    ]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return {"name": name, "pid": proc.pid, "log": str(log), "args": args}


def _wait_for_raylet(node: dict, timeout: float = 90) -> None:
    """Block until the node's raylet runs; records its pid and node id (for fault injection)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            launcher = psutil.Process(node["pid"])
            for child in launcher.children(recursive=True):
                cmd = child.cmdline()
                if cmd and cmd[0].endswith("raylet"):
                    ids = [a.split("=", 1)[1] for a in cmd if a.startswith("--node_id=")]
                    node.update(raylet_pid=child.pid, node_id=ids[0] if ids else "")
                    return
        except psutil.NoSuchProcess:
            raise RuntimeError(f"{node['name']} exited while starting: see {node['log']}") from None
        time.sleep(0.3)
    raise TimeoutError(f"{node['name']}: no raylet after {timeout:.0f} s: see {node['log']}")


def _wait_registered(state: dict, count: int, timeout: float = 90) -> None:
    """Block until the GCS lists count alive nodes (raylets registered)."""
    env = {**os.environ, **client_env(state)}
    code = "import ray; ray.init(); print(sum(n['Alive'] for n in ray.nodes()))"
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        time.sleep(1)
    raise TimeoutError(f"fewer than {count} nodes registered after {timeout:.0f} s")


def start(
    folder: Path,
    workers: int,
    gpus: int,
    cpus: int,
    head_cpus: int,
    head_args: tuple[str, ...] = (),
    head_env: dict | None = None,
    port: int | None = None,
) -> dict:
    """Start the head and the worker nodes; returns the state written to folder/cluster.json.

    head_args/head_env: extra `ray start` flags and environment of the head; port: its GCS port
    (default: a free one). The autoscaler demo uses these.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / STATE).is_file() and any(alive(load_state(folder)).values()):
        raise SystemExit(f"error: a cluster from {folder} still runs: stop it first")
    port, dash = port or free_port(), free_port()
    state = {
        "address": f"127.0.0.1:{port}",
        "dashboard": f"http://127.0.0.1:{dash}",
        "temp_dir": _temp_dir(folder),
        "marker": str((folder / STATE).resolve()),
        "nodes": [],
    }
    args = [
        "--head",
        f"--port={port}",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dash}",
        f"--ray-client-server-port={free_port()}",
        f"--num-cpus={head_cpus}",  # 0: no trials on the head, as on a real cluster
        "--num-gpus=0",
        *head_args,
    ]
    # the dashboard's and the autoscaler's Prometheus servers default to fixed ports (44227, 44217)
    metrics = {"DASHBOARD_METRIC_PORT": str(free_port()), "AUTOSCALER_METRIC_PORT": str(free_port())}
    head = _launch(state, folder, "head", args, {**metrics, **(head_env or {})})
    state["nodes"].append(head)
    save_state(folder, state)
    _wait_for_raylet(head)
    for _ in range(workers):
        add_node(folder, state, gpus=gpus, cpus=cpus, wait=False)
    _wait_registered(state, 1 + workers)
    save_state(folder, state)
    return state


def add_node(folder: Path, state: dict | None = None, *, gpus: int, cpus: int, wait: bool = True) -> dict:
    """One more worker node; returns its record (pid, raylet_pid, node_id)."""
    folder = Path(folder)
    state = state or load_state(folder)
    name = f"worker-{sum(n['name'].startswith('worker') for n in state['nodes']) + 1}"
    node = _launch(
        state, folder, name, [f"--address={state['address']}", f"--num-cpus={cpus}", f"--num-gpus={gpus}"]
    )
    state["nodes"].append(node)
    save_state(folder, state)
    _wait_for_raylet(node)
    save_state(folder, state)
    if wait:
        _wait_registered(state, sum(alive(state).values()))
    return node


def alive(state: dict) -> dict[str, bool]:
    """Node name -> whether its `ray start` process still runs."""
    return {n["name"]: psutil.pid_exists(n["pid"]) and _is_ours(n["pid"], state) for n in state["nodes"]}


def _is_ours(pid: int, state: dict) -> bool:
    try:
        return psutil.Process(pid).environ().get(MARKER) == state["marker"]
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def cluster_processes(state: dict) -> list[psutil.Process]:
    """Every live process of this cluster: its nodes and all they spawned, orphans included.

    Ray's workers and agents rename themselves (setproctitle), which also hides their environment
    from /proc: they are found by the files they keep open under the cluster's temp dir. A driver
    attached to the cluster writes its logs there too; this process and its parents never count.
    """
    temp = state["temp_dir"].rstrip("/") + "/"
    spare = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    mine = []
    for proc in psutil.process_iter():
        try:
            if proc.pid in spare or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(MARKER) == state["marker"] or any(
                f.path.startswith(temp) for f in proc.open_files()
            ):
                mine.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return mine


def listening(procs: list[psutil.Process]) -> list[tuple[str, int, str]]:
    """(ip, port, process name) of every TCP socket the processes listen on."""
    rows = set()
    for proc in procs:
        try:
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    rows.add((conn.laddr.ip, conn.laddr.port, proc.name()))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return sorted(rows)


def stop(folder: Path, timeout: float = 20) -> int:
    """SIGTERM each node's `ray start` (workers first), then SIGKILL whatever of the cluster is left.

    Returns the number of processes that needed SIGKILL.
    """
    folder = Path(folder)
    state = load_state(folder)
    for node in reversed(state["nodes"]):
        if _is_ours(node["pid"], state):
            os.kill(node["pid"], signal.SIGTERM)
    deadline = time.time() + timeout
    while time.time() < deadline and cluster_processes(state):
        time.sleep(0.5)
    left = cluster_processes(state)
    for proc in left:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(left, timeout=10)
    for node in state["nodes"]:  # reap the `ray start` processes this process launched
        try:
            os.waitpid(node["pid"], os.WNOHANG)
        except ChildProcessError:
            pass
    if Path(state["temp_dir"]).name.startswith("rlc-"):
        shutil.rmtree(state["temp_dir"], ignore_errors=True)
    return len(left)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("start", "start a head and --workers worker nodes"),
        ("add-node", "start one more worker node"),
        ("status", "the nodes, their PIDs and whether they run"),
        ("env", "shell exports for a client (RAY_ADDRESS, RAY_DASHBOARD, token auth)"),
        ("stop", "stop exactly the processes of this cluster"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument(
            "--dir", type=Path, required=True, help="folder for cluster.json, logs/ and the Ray temp dir"
        )
        if name in ("start", "add-node"):
            p.add_argument(
                "--gpus-per-worker", type=int, default=1, help="GPUs each worker declares (may be fake)"
            )
            p.add_argument("--cpus-per-worker", type=int, default=1, help="CPUs each worker declares")
        if name == "start":
            p.add_argument("--workers", type=int, default=2, help="worker nodes to start")
            p.add_argument("--head-cpus", type=int, default=0, help="CPUs of the head (0: no trials there)")
    args = parser.parse_args(argv)
    if args.command == "start":
        state = start(args.dir, args.workers, args.gpus_per_worker, args.cpus_per_worker, args.head_cpus)
        print(
            f"Ray cluster up: address {state['address']}, dashboard {state['dashboard']}, "
            f"{args.workers} workers x {args.gpus_per_worker} GPU; state {args.dir / STATE}"
        )
    elif args.command == "add-node":
        node = add_node(args.dir, gpus=args.gpus_per_worker, cpus=args.cpus_per_worker)
        print(f"{node['name']} up (pid {node['pid']}, node {node['node_id'][:8]})")
    elif args.command == "status":
        state = load_state(args.dir)
        print(f"address {state['address']}  dashboard {state['dashboard']}  temp dir {state['temp_dir']}")
        for node in state["nodes"]:
            running = "running" if alive(state)[node["name"]] else "stopped"
            print(
                f"  {node['name']:10s} pid {node['pid']:<7d} node {node.get('node_id', '')[:8]:8s} {running}"
            )
        procs = cluster_processes(state)
        ports = listening(procs)
        print(f"  {len(procs)} processes, listening on {len(ports)} TCP ports:")
        for ip, port, name in ports:
            exposed = "" if ip.startswith("127.") or ip in ("::1", "::ffff:127.0.0.1") else "  (not loopback)"
            print(f"    {ip}:{port}  {name}{exposed}")
    elif args.command == "env":
        for key, value in client_env(load_state(args.dir)).items():
            print(f"export {key}={value}")
    else:
        killed = stop(args.dir)
        print(f"stopped{f' ({killed} processes needed SIGKILL)' if killed else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
