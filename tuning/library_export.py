"""Top-k export, Ray-free: ranking finished trials, m{i}.safetensors + manifest.json, trials.csv
and a plot of the search metric per trial coloured by architecture.

The search layer (tuning.search) turns Ray's results into TrialSummary records; everything here
reads only those, so it runs (and is tested) without Ray.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from configs import CLASSES
from data_prep.atomic import write_bytes, write_text
from tuning.checkpoint import MODEL_FILE, read_meta
from tuning.manifest import ManifestEntry, ManifestFile, write_manifest
from tuning.metrics import PER_CLASS_F1_KEYS

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)(\(\w+\))?(:|$)")
ERROR_CHARS = 500


def error_message(err: BaseException | str) -> str:
    """The exception's own 'Type: message' on one line, not the coloured Ray header above it.

    A Ray task error carries the original exception as .cause; a restored one only its text, where
    the last traceback line that names an exception type starts the message.
    """
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException):
        text = f"{type(cause).__name__}: {cause}"
    else:
        lines = [ln.rstrip() for ln in _ANSI.sub("", str(err)).splitlines() if ln.strip()]
        starts = [i for i, ln in enumerate(lines) if _EXCEPTION_LINE.match(ln)]
        text = "\n".join(lines[starts[-1] :] if starts else lines[-1:])
        if not starts and isinstance(err, BaseException):
            text = f"{type(err).__name__}: {text}"
    return " | ".join(ln.strip() for ln in _ANSI.sub("", text).splitlines() if ln.strip())[:ERROR_CHARS]


@dataclass
class TrialSummary:
    """One trial of a search as plain data: what it tried, how it scored, where its best weights are."""

    trial_id: str
    config: dict[str, Any]  # the sampled overrides, dotted config paths ("model.arch", "train.lr")
    status: str  # completed | stopped early | error
    metric: str  # the search metric (search.metric): best_score and history are this metric
    epochs: list[dict[str, Any]] = field(default_factory=list)  # reported metrics, one dict per epoch
    best_score: float = math.nan  # NaN: no epoch finished
    best_checkpoint: Path | None = None  # checkpoint directory (model.safetensors + meta.json)
    error: str = ""
    node: str = ""
    device: str = ""
    train_s: float = math.nan  # inside the training function (data, model, epochs), summed over runs
    wall_s: float = math.nan  # the trial as Ray timed it (time_total_s), summed over runs

    @property
    def arch(self) -> str:
        return str(self.config.get("model.arch", "?"))

    @property
    def encoder(self) -> str:
        return str(self.config.get("model.encoder", "?"))

    @property
    def params(self) -> dict[str, Any]:
        """The sampled parameters other than the model choice."""
        return {k: v for k, v in self.config.items() if not k.startswith("model.")}

    @property
    def num_epochs(self) -> int:
        return max((int(e["epoch"]) for e in self.epochs if "epoch" in e), default=0)

    @property
    def history(self) -> list[float]:
        """The search metric per reported epoch."""
        return [float(e.get(self.metric, math.nan)) for e in self.epochs]

    @property
    def overhead_s(self) -> float:
        return self.wall_s - self.train_s

    @property
    def batching(self) -> dict[str, Any]:
        """The train batch split the trial ended with (tuning.oom): micro_batch, accum_steps, oom_retries."""
        last = self.epochs[-1] if self.epochs else {}
        return {k: last.get(k, math.nan) for k in BATCHING_COLUMNS}

    def best_epoch(self) -> dict[str, Any]:
        """The reported metrics of the epoch with the best search metric ({} before any epoch)."""
        scored = [e for e in self.epochs if e.get(self.metric) is not None and not math.isnan(e[self.metric])]
        return max(scored, key=lambda e: e[self.metric]) if scored else {}


BATCHING_COLUMNS = ("micro_batch", "accum_steps", "oom_retries")


def by_score(trials: list[TrialSummary]) -> list[TrialSummary]:
    """Trials best first; trials without a score (errored before epoch 1) last."""
    return sorted(trials, key=lambda t: -1 if math.isnan(t.best_score) else t.best_score, reverse=True)


def rank(trials: list[TrialSummary], top_k: int, max_per_arch: int | None) -> list[TrialSummary]:
    """The k best trials by best score, at most max_per_arch of one architecture."""
    ranked = [t for t in by_score(trials) if t.best_checkpoint is not None and not math.isnan(t.best_score)]
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
        meta = read_meta(t.best_checkpoint)
        weights = f"m{i}.safetensors"
        write_bytes(out / weights, (t.best_checkpoint / MODEL_FILE).read_bytes())
        entries.append(
            ManifestEntry(
                name=f"m{i}-{meta['arch']}-{meta['encoder']}",
                arch=meta["arch"],
                encoder=meta["encoder"],
                image_size=meta["image_size"],
                mean=meta["mean"],
                std=meta["std"],
                weights=weights,
                val_f1=meta["val_f1"],
                epoch=meta["epoch"],
                trial_id=t.trial_id,
                config=meta["config"],
            )
        )
    return write_manifest(out, entries)


def search_metric(trials: list[TrialSummary]) -> str:
    """The metric the trials were ranked by (their own record of it)."""
    return trials[0].metric if trials else "score"


def trials_frame(trials: list[TrialSummary]) -> pd.DataFrame:
    best = f"best_{search_metric(trials)}"
    rows = []
    for t in by_score(trials):
        rows.append(
            {
                "trial_id": t.trial_id,
                "status": t.status,
                "arch": t.arch,
                "encoder": t.encoder,
                **t.params,
                "epochs": t.num_epochs,
                best: t.best_score,
                "node": t.node,
                "device": t.device,
                "wall_s": t.wall_s,
                "train_s": t.train_s,
                "overhead_s": t.overhead_s,
                **t.batching,
                **warmup_columns(t),
                "error": t.error,
            }
        )
    return pd.DataFrame(rows)


WARMUP_COLUMNS = ("first_step_s", "first_epoch_s", "epoch_s")


def warmup_columns(t: TrialSummary) -> dict[str, float]:
    """Warm-up seconds (tuning.speed.WarmupClock) from the trial's last reported epoch; NaN if absent."""
    last = t.epochs[-1] if t.epochs else {}
    return {k: math.nan if last.get(k) is None else float(last[k]) for k in WARMUP_COLUMNS}


def write_trials_csv(trials: list[TrialSummary], path: Path) -> pd.DataFrame:
    df = trials_frame(trials)
    write_text(path, df.to_csv(index=False))
    return df


def write_per_class_csv(trials: list[TrialSummary], path: Path) -> pd.DataFrame:
    """per_class_f1.csv: each trial's val F1 per class at its best epoch (blank: class absent from val)."""
    rows = []
    for t in by_score(trials):
        best = t.best_epoch()
        row = {"trial_id": t.trial_id, "arch": t.arch, "encoder": t.encoder, "epoch": best.get("epoch")}
        rows.append(row | {name: best.get(key) for name, key in zip(CLASSES, PER_CLASS_F1_KEYS)})
    df = pd.DataFrame(rows, columns=["trial_id", "arch", "encoder", "epoch", *CLASSES])
    write_text(path, df.to_csv(index=False))
    return df


def arch_colors(trials: list[TrialSummary]) -> tuple[dict[str, Any], list[Any]]:
    """A colour per architecture (sorted by name) and the legend handles that name them."""
    from matplotlib.lines import Line2D

    from data_prep.figures import color

    colors = {a: color(i) for i, a in enumerate(sorted({t.arch for t in trials}))}
    return colors, [Line2D([], [], color=c, marker="s", ls="", label=a) for a, c in colors.items()]


def plot_trials(trials: list[TrialSummary], path: Path) -> None:
    """The metric per epoch for every trial (left) and the best per trial (right), by architecture."""
    from data_prep.figures import new_figure, save_figure

    metric = search_metric(trials)
    colors, handles = arch_colors(trials)
    fig = new_figure(12, 4.5)
    ax1, ax2 = fig.subplots(1, 2)
    for t in trials:
        if t.history:
            ax1.plot(range(1, len(t.history) + 1), t.history, marker="o", color=colors[t.arch], alpha=0.8)
    ax1.set(xlabel="epoch", ylabel=metric, title=f"{metric} per epoch (ASHA stops the weak)")
    ranked = by_score(trials)
    ax2.bar(
        range(len(ranked)),
        [0 if math.isnan(t.best_score) else t.best_score for t in ranked],
        color=[colors[t.arch] for t in ranked],
    )
    ax2.set_xticks(
        range(len(ranked)), [f"{t.encoder}\n{t.trial_id[-5:]}" for t in ranked], rotation=60, fontsize=7
    )
    ax2.set(ylabel=f"best {metric}", title=f"best {metric} per trial")
    fig.legend(handles=handles, loc="upper center", ncol=max(1, len(handles)), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    save_figure(fig, path, dpi=110, tight=False)


def ranked_table(trials: list[TrialSummary], members: list[TrialSummary]) -> str:
    """A plain-text ranked table for the terminal."""
    member_ids = {t.trial_id: i for i, t in enumerate(members)}
    lines = [
        f"{'rank':>4}  {'member':>6}  {'trial':<22} {'arch':<14} {'encoder':<16} "
        f"{'epochs':>6}  {search_metric(trials):>7}  status"
    ]
    ranked = by_score(trials)
    for r, t in enumerate(ranked, 1):
        m = f"m{member_ids[t.trial_id]}" if t.trial_id in member_ids else ""
        lines.append(
            f"{r:>4}  {m:>6}  {t.trial_id:<22} {t.arch:<14} {t.encoder:<16} "
            f"{t.num_epochs:>6}  {t.best_score:>7.4f}  {t.status}"
        )
    return "\n".join(lines)
