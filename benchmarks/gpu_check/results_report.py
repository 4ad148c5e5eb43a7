"""summary.md of a gpu_check run: one table per section, read from results.json's dict."""

from __future__ import annotations

import math


def _f(x, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _failed(section: dict) -> list[str]:
    if section.get("status") in ("error", "skipped"):
        return [f"**{section['status']}**: {section.get('error', '')}", ""]
    return []


def _throughput(rows: list[dict]) -> list[str]:
    lines = [
        "| arch / encoder | amp | memory format | compile | first step s | warm-up s | images/s | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['arch']} / {r['encoder']} | {r['amp']} | {r['memory_format']} | {r['compile']} | "
            f"{_f(r.get('first_step_s'))} | {_f(r.get('warmup_s'))} | {_f(r.get('images_per_s'))} | "
            f"{r.get('status')} {r.get('error', '')} |"
        )
    return lines


def _profiles(rows: list[dict]) -> list[str]:
    lines = []
    for r in rows:
        lines.append(
            f"**{r['name']}** ({r['amp']}, {r['memory_format']}): {r.get('status')} {r.get('error', '')}"
        )
        if r.get("status") != "ok":
            lines.append("")
            continue
        lines += [
            f"step {_f(r['step_ms'])} ms ({_f(r['images_per_s'])} images/s while profiled)",
            "",
            "| op | calls | self device ms/step | self CPU ms/step |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| `{o['op']}` | {o['calls']} | {_f(o['self_device_ms'], 2)} | {_f(o['self_cpu_ms'], 2)} |"
            for o in r["top_ops"][:10]
        ]
        lines.append("")
    return lines


def _workers_needed(loader_rows: list[dict], model_rows: list[dict]) -> list[str]:
    # resources.cpu of a trial: enough loader workers to keep the fastest measured model fed.
    per_worker = max((r["per_worker"] for r in loader_rows if r["workers"]), default=0)
    fastest = max(
        (r for r in model_rows if r.get("status") == "ok"), key=lambda r: r["images_per_s"], default=None
    )
    if not per_worker or fastest is None:
        return []
    need = math.ceil(fastest["images_per_s"] / per_worker)
    return [
        "",
        f"To feed the fastest variant ({fastest['arch']}/{fastest['encoder']}, {_f(fastest['images_per_s'])} "
        f"images/s) a trial needs about {need} loader workers (resources.cpu >= {need + 1}).",
    ]


def _table(rows: list[dict], keys: list[str]) -> list[str]:
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_f(r.get(k), 3 if "f1" in k else 1) for k in keys) + " |" for r in rows]
    return lines


def markdown(results: dict) -> str:
    """The whole summary."""
    m = results.get("machine", {})
    lines = [
        f"# GPU check ({results.get('mode')}) on {m.get('device')}",
        "",
        f"torch {m.get('torch')}, CUDA {m.get('cuda')}, {m.get('cpus')} CPUs, python {m.get('python')}, "
        f"compile backend {m.get('compile_backend')}; total {_f(results.get('total_s'), 0)} s; "
        f"ray imported: {results.get('ray_imported')}",
        "",
    ]
    titles = {
        "data": "Data",
        "throughput": "Training throughput (warm-up = model build to the end of the warm steps)",
        "profile": "Profiler: top ops per training step",
        "loader": "Training loader (default augmentations, prepared size)",
        "train": "Short training with train() (no Ray)",
        "ensemble": "Ensemble on the test split",
        "overhead": "Ensemble overhead (benchmarks/ensemble_overhead.py)",
        "share": "Two trainings sharing one GPU",
    }
    for key, title in titles.items():
        section = results.get(key)
        if section is None:
            continue
        lines += [f"## {title} ({_f(section.get('section_s'), 0)} s)", ""]
        lines += _failed(section)
        if section.get("status") != "ok":
            continue
        if key == "data":
            lines.append(
                f"splits {section['splits']}; synth {_f(section['synth_s'])} s, prepare {_f(section['prepare_s'])} s"
            )
        elif key == "throughput":
            lines += _throughput(section["rows"])
        elif key == "profile":
            lines += _profiles(section["rows"])
        elif key == "loader":
            lines += _table(section["rows"], ["workers", "images_per_s", "per_worker"])
            lines += _workers_needed(section["rows"], results.get("throughput", {}).get("rows", []))
        elif key == "train":
            keys = ["arch", "encoder", "best_val_f1", "first_step_s", "first_epoch_s", "epoch_s", "wall_s"]
            lines += _table(section["members"], keys) + ["", f"manifest: `{section['manifest']}`"]
        elif key == "ensemble":
            lines.append(f"exit code {section['exit_code']}, {_f(section['wall_s'])} s")
        elif key == "overhead":
            lines += ["| what | ms/image |", "|---|---|"]
            lines += [f"| {k} | {_f(v, 2)} |" for k, v in section.get("ms_per_image", {}).items()]
        elif key == "share":
            one, two = section["1_process"], section["2_process"]
            lines.append(
                f"{section['arch']}/{section['encoder']}: one process {_f(one['total_images_per_s'])} images/s, "
                f"two at once {_f(two['total_images_per_s'])} in total (x{_f(section['speedup_two_vs_one'], 2)})"
            )
        lines.append("")
    return "\n".join(lines) + "\n"
