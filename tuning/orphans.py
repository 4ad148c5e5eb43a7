"""Ray processes left behind by a driver that died: wait for them, then end them, before a new local Ray."""

from __future__ import annotations

import psutil

# A raylet starts every process titled "ray::..." (agents, trial workers). When a killed driver
# takes its local raylet with it, they notice only on their next liveness check (~60 s for the
# agents) and meanwhile hold their ports (the dashboard agent's fixed 52365: the next local Ray
# logs "Agent port #52365 failed to bind") or go on training a trial that --resume restarts.
TITLE = "ray::"


def orphaned_ray_processes() -> list[psutil.Process]:
    """This user's Ray agents and workers whose raylet is gone (no raylet among their ancestors)."""
    found, me = [], psutil.Process().username()
    for proc in psutil.process_iter(["cmdline", "username"]):
        try:
            cmd = proc.info["cmdline"] or []
            if not cmd or not cmd[0].startswith(TITLE) or proc.info["username"] != me:
                continue
            if not any(parent.name() == "raylet" for parent in proc.parents()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def reap_orphans(grace_s: float = 5.0) -> int:
    """Give orphaned Ray processes grace_s to exit, then terminate them; returns how many were left then."""
    orphans = orphaned_ray_processes()
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
        try:
            proc.kill()
        except psutil.NoSuchProcess:  # exited between the wait and the kill
            pass
    if alive:
        print(f"ended {len(alive)} Ray processes left by a previous run whose raylet is gone", flush=True)
    return len(alive)
