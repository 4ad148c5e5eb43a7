"""Fault injection on the local multi-process cluster (scripts/local_cluster.py): one line per scenario.

    python scripts/fault_scenarios.py --work runs/faults [--out runs/faults/fault_scenarios.txt]

A tiny search (40 generated faces at 64 px, Unet/FPN resnet18, a few epochs of a few seconds,
one fake GPU per trial and per worker node, none on the head) under five faults:
  a  a worker node's raylet SIGKILLed mid-trial: the trial continues from its last checkpoint on
     another node; epochs lost = finished epochs trained again (the running one is always lost)
  b  a worker node added mid-search: it receives the pending trial
  c  the driver SIGKILLed (a local Ray, no --address): `--resume` completes; Ray processes of the
     dead run (its agents outlive the driver) are gone before and after it
  d  SIGINT, then `--resume`: which checkpoint each unfinished trial resumes from, against the
     newest one on disk
  e  the resumed search's metrics against an uninterrupted search with the same seed (0 loader
     workers): bit-identical or not
Everything this script starts is stopped when it ends (local_cluster.stop; process groups).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import local_cluster as lc  # noqa: E402

PY = sys.executable
EPOCHS = 5


def prepare(work: Path) -> Path:
    """40 generated faces at 64 px, prepared once (data_prep synth + celebamask)."""
    prep = work / "prep"
    if not (prep / "dataset.json").is_file():
        raw = work / "raw"
        subprocess.run(
            [PY, "-m", "data_prep", "synth", "--out", str(raw), "--num", "40", "--size", "64"],
            check=True,
            cwd=REPO,
            capture_output=True,
        )
        cmd = [PY, "-m", "data_prep", "celebamask", "--root", str(raw), "--out", str(prep), "--size", "64"]
        subprocess.run([*cmd, "--val-fraction", "0.25"], check=True, cwd=REPO, capture_output=True)
    return prep


def write_config(work: Path, prep: Path, name: str, *, samples: int, gpu: int) -> Path:
    """Few trials x EPOCHS epochs, no early stopping, every checkpoint kept, 2 retries per trial."""
    raw = {
        "seed": 0,
        "data": {"datasets": [{"path": str(prep)}], "image_size": 64, "num_workers": 0},
        "model": {"encoder_weights": None},
        "train": {"epochs": EPOCHS, "batch_size": 8, "lr": 3e-3, "amp": "none"},
        "search": {
            "archs": {"Unet": ["resnet18"], "FPN": ["resnet18"]},
            "params": {"train.lr": {"low": 1e-3, "high": 5e-3, "log": True}},
            "num_samples": samples,
            "max_concurrent": samples,
            "num_to_keep": EPOCHS,
            "max_failures": 2,
            "top_k": 1,
            "candidates": 1,
            "asha": {"grace_period": EPOCHS, "reduction_factor": 2},
        },
        "resources": {"cpu": 1, "gpu": gpu, "storage": str(work / "ray"), "include_dashboard": False},
    }
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


class Search:
    """One `python -m tuning` driver in its own process group, its log, and its trials on disk."""

    def __init__(self, work: Path, name: str, config: Path, address: str | None, resume: bool = False):
        self.dir = work / "ray" / name
        cmd = [
            PY,
            "-m",
            "tuning",
            "--config",
            str(config),
            "--name",
            name,
            "--out",
            str(work / "models" / name),
        ]
        cmd += (["--address", address] if address else []) + (["--resume"] if resume else [])
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        if address:
            env.update(lc.token_env())  # RAY_AUTH_MODE=token: a client must send the cluster's token
        log = open(work / f"{name}{'-resume' if resume else ''}.log", "w")  # noqa: SIM115 (closed in wait)
        self.log, self.started = log, time.time()
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def trials(self) -> dict[str, list[dict]]:
        """Trial directory name -> the result rows the driver recorded (result.json)."""
        out = {}
        for path in sorted(self.dir.glob("*/result.json")):
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            out[path.parent.name] = rows
        return out

    def wait_until(self, condition, timeout: float = 400, what: str = "") -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if condition(self.trials()):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"driver exited ({self.proc.returncode}) before {what}: see {self.log.name}"
                )
            time.sleep(0.5)
        raise TimeoutError(f"no {what} after {timeout:.0f} s: see {self.log.name}")

    def wait(self, timeout: float = 600) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.log.close()

    def kill(self, sig: int) -> None:
        os.killpg(self.proc.pid, sig)


def checkpoints_on_disk(trial_dir: Path) -> list[int]:
    """Epochs of the checkpoint directories a trial persisted (meta.json's epoch)."""
    return sorted(
        json.loads((d / "meta.json").read_text())["epoch"]
        for d in trial_dir.glob("checkpoint_*")
        if (d / "meta.json").is_file()
    )


def node_of(rows: list[dict]) -> str:
    return str(rows[-1].get("node", "")).split("/")[-1] if rows else ""


def scenario_a_b(work: Path, prep: Path, state: dict) -> list[str]:
    """a: SIGKILL a worker's raylet mid-trial; b: a node added while a trial waits for a GPU."""
    config = write_config(work, prep, "ab", samples=3, gpu=1)
    search = Search(work, "ab", config, state["address"])
    search.wait_until(lambda t: sum(bool(r) for r in t.values()) >= 2, what="two running trials")
    before = {name for name, rows in search.trials().items() if rows}
    t_add = time.time()
    node = lc.add_node(work / "cluster", gpus=1, cpus=1)
    new_id = node["node_id"][:8]
    search.wait_until(
        lambda t: any(node_of(r) == new_id for r in t.values()), what="a trial on the added node"
    )
    got = [n for n, r in search.trials().items() if node_of(r) == new_id]
    line_b = (
        f"b  add-node: {node['name']} ({new_id}) joined while {len(before)} trials ran and 1 waited for a GPU; "
        f"it received {len(got)} trial(s) ({', '.join(g.split('_')[1] for g in got)}) "
        f"{time.time() - t_add:.0f} s after `add-node` -> {'OK' if got else 'FAILED'}"
    )

    # a: a running trial two epochs in (the two first ones free their GPUs later: somewhere to go)
    def ready(t):
        return [n for n, r in t.items() if 2 <= len(r) <= EPOCHS - 2]

    search.wait_until(lambda t: bool(ready(t)), what="a trial two epochs in")
    trials = search.trials()
    name = max(ready(trials), key=lambda n: len(trials[n]))
    victim_node = node_of(trials[name])
    worker = next(n for n in state["nodes"] + [node] if n.get("node_id", "")[:8] == victim_node)
    done_at_kill = len(trials[name])
    on_disk_at_kill = checkpoints_on_disk(search.dir / name)
    since_report = time.time() - (search.dir / name / "result.json").stat().st_mtime
    os.kill(worker["raylet_pid"], signal.SIGKILL)
    code = search.wait()
    rows = search.trials()[name]
    epochs = [r["epoch"] for r in rows]
    resumed_at = epochs[done_at_kill] if len(epochs) > done_at_kill else None
    lost = done_at_kill + 1 - resumed_at if resumed_at else float("nan")
    line_a = (
        f"a  SIGKILL raylet of {worker['name']} ({victim_node}) in epoch {done_at_kill + 1} of trial "
        f"{name.split('_')[1]} (newest checkpoint epoch {max(on_disk_at_kill, default=0)}, "
        f"{since_report:.0f} s into the running epoch): resumed at epoch {resumed_at} on node {node_of(rows)}; "
        f"finished epochs lost {lost}, running epoch lost 1; trial reached epoch {epochs[-1]}/{EPOCHS}, "
        f"search exit {code} -> {'OK' if code == 0 and lost == 0 and epochs[-1] == EPOCHS else 'FAILED'}"
    )
    return [line_a, line_b]


def ray_tree(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def scenario_c(work: Path, prep: Path) -> str:
    """SIGKILL the driver of a local (single-node) search, then --resume."""
    config = write_config(work, prep, "c", samples=2, gpu=0)
    search = Search(work, "c", config, None)
    search.wait_until(lambda t: any(len(r) >= 2 for r in t.values()), what="two epochs")
    tree = ray_tree(search.proc.pid)
    os.kill(search.proc.pid, signal.SIGKILL)
    search.wait()
    time.sleep(2)
    left = alive(tree)
    names = sorted({(p.cmdline() or [p.name()])[0].split()[0] for p in left if p.is_running()})
    resume = Search(work, "c", config, None, resume=True)
    code = resume.wait()
    reaped = "ended" in Path(resume.log.name).read_text()
    after = alive(tree)
    trials = resume.trials()
    complete = all(r and r[-1]["epoch"] == EPOCHS for r in trials.values())
    return (
        f"c  SIGKILL driver (local Ray) after 2 epochs: {len(left)} of its {len(tree)} Ray processes outlived it "
        f"({', '.join(names) or 'none'}); --resume {'ended them first' if reaped else 'found none to end'}, exit {code}, "
        f"trials complete {complete}; processes of the dead run left after the resume: {len(after)} "
        f"-> {'OK' if code == 0 and complete and not after else 'FAILED'}"
    )


def scenario_d_e(work: Path, prep: Path, state: dict) -> list[str]:
    """d: SIGINT mid-search, then --resume; e: compared with an uninterrupted search."""
    config = write_config(work, prep, "d", samples=2, gpu=1)
    search = Search(work, "d", config, state["address"])
    search.wait_until(
        lambda t: len(t) == 2 and all(2 <= len(r) for r in t.values()), what="two epochs in both trials"
    )
    search.kill(signal.SIGINT)
    code_int = search.wait(timeout=120)
    recorded = {n: len(r) for n, r in search.trials().items()}
    on_disk = {n: max(checkpoints_on_disk(search.dir / n), default=0) for n in recorded}
    resume = Search(work, "d", config, state["address"], resume=True)
    code = resume.wait()
    parts, redone = [], 0
    for name, rows in resume.trials().items():
        epochs = [r["epoch"] for r in rows]
        at = epochs[recorded[name]] if len(epochs) > recorded[name] else None
        redone += (on_disk[name] + 1 - at) if at else 0
        parts.append(
            f"{name.split('_')[1]}: driver had epoch {recorded[name]}, newest checkpoint on disk epoch {on_disk[name]}, resumed at epoch {at}"
        )
    line_d = (
        f"d  SIGINT (exit {code_int}) then --resume (exit {code}): "
        + "; ".join(parts)
        + f"; epochs redone {redone} -> {'OK' if code == 0 and redone == 0 else 'REDONE' if code == 0 else 'FAILED'}"
    )

    config_e = write_config(work, prep, "e", samples=2, gpu=1)
    plain = Search(work, "e", config_e, state["address"])
    code_e = plain.wait()

    def by_params(trials):
        out = {}
        for rows in trials.values():
            cfg = rows[0]["config"]
            out[json.dumps(cfg, sort_keys=True)] = rows
        return out

    a, b = by_params(resume.trials()), by_params(plain.trials())
    fields = ("train_loss", "val_loss", "val_f1", "lr")
    diffs = []
    for params in a.keys() & b.keys():
        ra = {r["epoch"]: r for r in a[params]}  # a redone epoch: its last row
        rb = {r["epoch"]: r for r in b[params]}
        diffs += [abs(ra[e][f] - rb[e][f]) for e in ra.keys() & rb.keys() for f in fields]
    exact = bool(diffs) and max(diffs) == 0.0
    line_e = (
        f"e  resumed (d) vs uninterrupted search, same seed, 0 loader workers: {len(a.keys() & b.keys())} trial configs "
        f"matched, {len(diffs)} metric values compared, max |diff| {max(diffs, default=float('nan')):.3g} "
        f"(exit {code_e}) -> {'bit-identical' if exact else 'DIFFERENT'}"
    )
    return [line_d, line_e]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--work", type=Path, required=True, help="scratch folder (data, cluster, Tune storage, logs)"
    )
    parser.add_argument(
        "--out", type=Path, help="also write the scenario lines here (default WORK/fault_scenarios.txt)"
    )
    parser.add_argument("--only", default="abcde", help="scenarios to run, e.g. 'c' or 'ab' (default all)")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    out = args.out or work / "fault_scenarios.txt"
    prep = prepare(work)
    lines = [
        f"# fault scenarios on {os.uname().nodename} ({os.cpu_count()} CPUs), {time.strftime('%Y-%m-%d %H:%M')}, {EPOCHS} epochs per trial"
    ]
    started = time.time()

    def emit(new: list[str]) -> None:
        for line in new:
            print(line, flush=True)
        lines.extend(new)

    if "c" in args.only:
        emit([scenario_c(work, prep)])
    if set(args.only) & set("abde"):
        state = lc.start(work / "cluster", workers=2, gpus=1, cpus=1, head_cpus=0)
        try:
            if set(args.only) & set("ab"):
                emit(scenario_a_b(work, prep, state))
            if set(args.only) & set("de"):
                emit(scenario_d_e(work, prep, state))
        finally:
            killed = lc.stop(work / "cluster")
            left = lc.cluster_processes(lc.load_state(work / "cluster"))
            emit(
                [
                    f"#  cluster stopped: {killed} processes needed SIGKILL, {len(left)} left; total {time.time() - started:.0f} s"
                ]
            )
    out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
