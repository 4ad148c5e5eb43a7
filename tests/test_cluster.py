"""A real multi-process cluster (scripts/local_cluster.py), loopback-only local Ray, orphaned agents."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import ray
from test_search import tiny_config

from configs import parse_config
from tuning.orphans import reap_orphans
from tuning.search import connect

REPO = Path(__file__).resolve().parents[1]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # starts a head and two worker nodes (~80 s on a 2-core box)
def test_search_runs_on_the_worker_nodes_of_a_local_cluster_and_stop_leaves_nothing(tmp_path, tiny_prepared):
    lc = load_script("local_cluster")
    folder = tmp_path / "cluster"
    state = lc.start(folder, workers=2, gpus=1, cpus=1, head_cpus=0)
    try:
        workers = {n["node_id"][:8] for n in state["nodes"] if n["name"].startswith("worker")}
        assert len(workers) == 2
        config = tiny_config(tmp_path, tiny_prepared, num_samples=2, max_concurrent=2)
        env = {**os.environ, **lc.client_env(state)}  # RAY_AUTH_MODE=token: the token is sent
        cmd = [sys.executable, "-m", "tuning", "--config", str(config), "--out", str(tmp_path / "m")]
        cmd += ["--name", "lc", "--address", state["address"], "--gpus-per-trial", "1", "--max-epochs", "1"]
        run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        trials = pd.read_csv(tmp_path / "m" / "trials.csv")
        # one fake GPU per worker, none on the head: each trial on its own worker node, on the CPU
        assert {node.split("/")[-1] for node in trials["node"]} == workers
        assert set(trials["device"]) == {"cpu"}
        started = lc.cluster_processes(state)
        assert len(started) > 6  # GCS, raylets, agents, workers: what stop must end
    finally:
        lc.stop(folder)
    assert lc.cluster_processes(state) == []
    assert [p for p in started if running(p)] == []


def running(proc: psutil.Process) -> bool:
    """Alive and not a zombie (an exited child nobody reaped yet)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow  # starts Ray
def test_local_ray_listens_on_loopback_only():
    cfg = parse_config({"resources": {"dashboard_port": 18465}})
    connect(cfg, address=None)
    try:
        session = ray._private.worker._global_node.get_session_dir_path()
        procs = [psutil.Process(), *psutil.Process().children(recursive=True)]
        time.sleep(3)  # the agents open their ports after the driver connects
        listening = {
            (c.laddr.ip, c.laddr.port)
            for p in procs
            if p.is_running()
            for c in p.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN
        }
        assert session and len(listening) >= 5  # GCS, raylet, dashboard, agents, metrics servers
        exposed = {(ip, port) for ip, port in listening if ip not in ("127.0.0.1", "::ffff:127.0.0.1", "::1")}
        assert exposed == set()
    finally:
        ray.shutdown()


def test_agents_whose_raylet_is_gone_are_ended_before_a_new_local_ray(tmp_path):
    # what a SIGKILLed driver leaves for ~60 s: an agent whose parent is no raylet
    agent = subprocess.Popen(["bash", "-c", "exec -a ray::DashboardAgent sleep 120"])
    # and a live cluster's worker (a raylet above it), which must survive
    raylet = tmp_path / "raylet"
    raylet.symlink_to(shutil.which("bash"))
    live = subprocess.Popen([str(raylet), "-c", "bash -c 'exec -a ray::IDLE sleep 120'; true"])
    try:
        time.sleep(0.5)
        assert psutil.Process(agent.pid).cmdline()[0] == "ray::DashboardAgent"
        worker = psutil.Process(live.pid).children()[0]
        assert worker.cmdline()[0] == "ray::IDLE" and psutil.Process(live.pid).name() == "raylet"
        assert reap_orphans(grace_s=0.5) >= 1
        assert agent.wait(timeout=15) is not None
        assert worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE
    finally:
        for proc in (agent, live):
            if proc.poll() is None:
                _kill_tree(proc.pid)


def _kill_tree(pid: int) -> None:
    parent = psutil.Process(pid)
    for child in parent.children(recursive=True):
        child.kill()
    parent.kill()


def test_cluster_configs_ship_the_token_as_a_file_and_keep_the_dashboard_on_loopback():
    import yaml

    aws = yaml.safe_load((REPO / "configs" / "cluster" / "aws-gpu.yaml").read_text())
    assert aws["file_mounts"] == {"~/.ray/auth_token": "~/.ray/auth_token"}
    assert "token" not in str(aws).lower().replace("auth_token", "").replace("ray_auth_mode=token", "")
    starts = [
        c for c in aws["head_start_ray_commands"] + aws["worker_start_ray_commands"] if "ray start" in c
    ]
    assert starts and all(c.startswith("RAY_AUTH_MODE=token ray start") for c in starts)
    assert all("--dashboard-host=127.0.0.1" in c for c in starts if "--head" in c)
    fake = yaml.safe_load((REPO / "configs" / "cluster" / "local-fake.yaml").read_text())
    assert fake["provider"]["type"] == "fake_multinode"
    # derived from aws-gpu.yaml: the same worker type and limits, a head with no trials
    assert set(fake["available_node_types"]) - {"ray.head.default"} == set(aws["available_node_types"]) - {
        "head"
    }
    assert fake["available_node_types"]["gpu_worker"]["resources"]["GPU"] == 1
    assert fake["max_workers"] == aws["max_workers"]
    assert fake["available_node_types"]["ray.head.default"]["resources"] == {"CPU": 0, "GPU": 0}
