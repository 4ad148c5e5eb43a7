"""Ray agents left behind by a driver that died: wait for them, then end them, before a new local Ray."""

from __future__ import annotations

import psutil

# A raylet starts these; when the raylet dies with a killed driver they notice only on their next
# liveness check (~60 s) and meanwhile hold their ports: the dashboard agent's fixed 52365 among
# them, so the next local Ray logs "Agent port #52365 failed to bind" and runs without it.
AGENT_TITLES = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")


def orphaned_agents() -> list[psutil.Process]:
    """This user's Ray agents whose raylet is gone (their parent is no longer a raylet)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "username"]):
        try:
            cmd = proc.info["cmdline"] or []
            if not cmd or not cmd[0].startswith(AGENT_TITLES) or proc.info["username"] != _me():
                continue
            parent = proc.parent()
            if parent is None or parent.name() != "raylet":
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def reap_orphaned_agents(grace_s: float = 5.0) -> int:
    """Give orphaned agents grace_s to exit, then terminate them; returns how many were left then."""
    orphans = orphaned_agents()
    if not orphans:
        return 0
    _, alive = psutil.wait_procs(orphans, timeout=grace_s)
    for proc in alive:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, still = psutil.wait_procs(alive, timeout=10)
    for proc in still:
        proc.kill()
    if alive:
        print(f"ended {len(alive)} Ray agents left by a previous run whose raylet is gone", flush=True)
    return len(alive)


def _me() -> str:
    return psutil.Process().username()
