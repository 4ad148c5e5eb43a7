"""Ctrl-C a Ray experiment's command line once some trials have finished (the resume tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def result_lines(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines() if line]


def interrupt_after(
    cmd: list[str], trial_dirs: Callable[[], list[Path]], epochs: int, timeout_s: float
) -> dict[Path, list[dict]]:
    """Run cmd; once a trial has reported `epochs` epochs and another has started, send it what
    Ctrl-C sends and wait for it to exit. Returns the finished trials' result lines."""
    proc = subprocess.Popen(
        cmd, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + timeout_s
    finished: list[Path] = []
    try:
        while time.time() < deadline and proc.poll() is None:
            done = {d: len(result_lines(d)) for d in trial_dirs()}
            if any(n == epochs for n in done.values()) and len(done) >= 2:
                finished = [d for d, n in done.items() if n == epochs]
                break
            time.sleep(0.5)
        assert finished, "no trial finished before the deadline"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return {d: result_lines(d) for d in finished}
