"""Top-k export: best checkpoint of the k best trials -> m{i}.safetensors + manifest.json,
plus trials.csv and a plot of val_f1 per trial coloured by architecture."""
from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from data_prep.atomic import write_bytes, write_text
from tuning.manifest import ManifestEntry, ManifestFile, write_manifest
from tuning.space import trial_overrides


@dataclass
class TrialSummary:
    trial_id: str
    arch: str
    encoder: str
    params: dict[str, Any]
    status: str  # completed | stopped early | error
    epochs: int
    best_val_f1: float
    best_checkpoint: Any = None  # ray.tune.Checkpoint
    error: str = ""
    node: str = ""
    device: str = ""
    train_s: float = math.nan
    wall_s: float = math.nan
    history: list[float] = field(default_factory=list)

    @property
    def overhead_s(self) -> float:
        return self.wall_s - self.train_s


def summarize(results, max_epochs: int, wall: dict[str, float] | None = None) -> list[TrialSummary]:
    """One summary per trial of a ray.tune.ResultGrid."""
    wall = wall or {}
    out = []
    for result in results:
        config = result.config or {}
        overrides = trial_overrides(config) if "arch" in config else {}
        df = result.metrics_dataframe
        history = df["val_f1"].tolist() if df is not None and "val_f1" in df else []
        epochs = int(df["epoch"].max()) if history else 0
        best = max(history) if history else math.nan
        ckpt = None
        if result.best_checkpoints:
            ckpt, _ = max(result.best_checkpoints, key=lambda cm: cm[1].get("val_f1", -1))
        last = df.iloc[-1] if history else {}
        trial_id = (result.metrics or {}).get("trial_id") or Path(result.path).name
        status = "error" if result.error else ("completed" if epochs >= max_epochs else "stopped early")
        out.append(TrialSummary(
            trial_id=str(trial_id), arch=overrides.get("model.arch", "?"),
            encoder=overrides.get("model.encoder", "?"),
            params={k: v for k, v in overrides.items() if not k.startswith("model.")},
            status=status, epochs=epochs, best_val_f1=best, best_checkpoint=ckpt,
            error=str(result.error).splitlines()[0][:300] if result.error else "",
            node=str(last.get("node", "")), device=str(last.get("device", "")),
            train_s=float(last.get("train_fn_seconds", math.nan)) if history else math.nan,
            wall_s=wall.get(str(trial_id), math.nan), history=history,
        ))
    return out


def by_score(trials: list[TrialSummary]) -> list[TrialSummary]:
    """Trials best first; trials without a score (errored before epoch 1) last."""
    return sorted(trials, key=lambda t: -1 if math.isnan(t.best_val_f1) else t.best_val_f1, reverse=True)


def rank(trials: list[TrialSummary], top_k: int, max_per_arch: int | None) -> list[TrialSummary]:
    """The k best trials by best val_f1, at most max_per_arch of one architecture."""
    ranked = [t for t in by_score(trials) if t.best_checkpoint is not None and not math.isnan(t.best_val_f1)]
    chosen, per_arch = [], {}
    for t in ranked:
        if max_per_arch is not None and per_arch.get(t.arch, 0) >= max_per_arch:
            continue
        chosen.append(t)
        per_arch[t.arch] = per_arch.get(t.arch, 0) + 1
        if len(chosen) == top_k:
            break
    return chosen


def export_members(members: list[TrialSummary], out: Path) -> ManifestFile:
    """Copy each member's best weights to out/m{i}.safetensors and write manifest.json last."""
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, t in enumerate(members):
        with t.best_checkpoint.as_directory() as ckpt_dir:
            meta = json.loads((Path(ckpt_dir) / "meta.json").read_text())
            weights = f"m{i}.safetensors"
            write_bytes(out / weights, (Path(ckpt_dir) / "model.safetensors").read_bytes())
        entries.append(ManifestEntry(
            name=f"m{i}-{meta['arch']}-{meta['encoder']}", arch=meta["arch"], encoder=meta["encoder"],
            image_size=meta["image_size"], mean=meta["mean"], std=meta["std"], weights=weights,
            val_f1=meta["val_f1"], epoch=meta["epoch"], trial_id=t.trial_id, config=meta["config"]))
    return write_manifest(out, entries)


def trials_frame(trials: list[TrialSummary]) -> pd.DataFrame:
    rows = []
    for t in by_score(trials):
        rows.append({"trial_id": t.trial_id, "status": t.status, "arch": t.arch,
                     "encoder": t.encoder, **t.params, "epochs": t.epochs,
                     "best_val_f1": t.best_val_f1, "node": t.node, "device": t.device,
                     "wall_s": t.wall_s, "train_s": t.train_s, "overhead_s": t.overhead_s,
                     "error": t.error})
    return pd.DataFrame(rows)


def write_trials_csv(trials: list[TrialSummary], path: Path) -> pd.DataFrame:
    df = trials_frame(trials)
    write_text(path, df.to_csv(index=False))
    return df


def plot_trials(trials: list[TrialSummary], path: Path) -> None:
    """val_f1 per epoch for every trial (left) and best val_f1 per trial (right), by architecture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    archs = sorted({t.arch for t in trials})
    colors = {a: plt.get_cmap("tab10")(i % 10) for i, a in enumerate(archs)}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for t in trials:
        if t.history:
            ax1.plot(range(1, len(t.history) + 1), t.history, marker="o", color=colors[t.arch], alpha=0.8)
    ax1.set(xlabel="epoch", ylabel="val F1 (face classes)", title="val_f1 per epoch (ASHA stops the weak)")
    ranked = by_score(trials)
    ax2.bar(range(len(ranked)), [0 if math.isnan(t.best_val_f1) else t.best_val_f1 for t in ranked],
            color=[colors[t.arch] for t in ranked])
    ax2.set_xticks(range(len(ranked)), [f"{t.encoder}\n{t.trial_id[-5:]}" for t in ranked],
                   rotation=60, fontsize=7)
    ax2.set(ylabel="best val F1", title="best val_f1 per trial")
    handles = [plt.Line2D([], [], color=colors[a], marker="s", ls="", label=a) for a in archs]
    fig.legend(handles=handles, loc="upper center", ncol=len(archs), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    with tempfile.NamedTemporaryFile(suffix=".png", dir=path.parent, delete=False) as tmp:
        fig.savefig(tmp.name, dpi=110)
    plt.close(fig)
    shutil.move(tmp.name, path)


def ranked_table(trials: list[TrialSummary], members: list[TrialSummary]) -> str:
    """A plain-text ranked table for the terminal."""
    member_ids = {t.trial_id: i for i, t in enumerate(members)}
    lines = [f"{'rank':>4}  {'member':>6}  {'trial':<22} {'arch':<14} {'encoder':<16} "
             f"{'epochs':>6}  {'val_f1':>7}  status"]
    ranked = by_score(trials)
    for r, t in enumerate(ranked, 1):
        m = f"m{member_ids[t.trial_id]}" if t.trial_id in member_ids else ""
        lines.append(f"{r:>4}  {m:>6}  {t.trial_id:<22} {t.arch:<14} {t.encoder:<16} "
                     f"{t.epochs:>6}  {t.best_val_f1:>7.4f}  {t.status}")
    return "\n".join(lines)
