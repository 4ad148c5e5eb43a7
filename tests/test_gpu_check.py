"""benchmarks/gpu_check: the smoke plan covers every section and code path, stalls become timeouts,
the summary names every section, and nothing on its path imports Ray (Ray is absent on the GPU box).

The whole `--smoke` run (test_smoke_run_writes_every_section) takes about 30 s on the quiet 2-core
dev box and 3-4 minutes when it is shared, hence marked slow; `make gpu-check-smoke` runs it by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # benchmarks/ is no installed package: import it from the checkout

from benchmarks.gpu_check import results_report  # noqa: E402
from benchmarks.gpu_check.sections import run_json  # noqa: E402
from benchmarks.gpu_check.step_plans import full_variants, plan_for  # noqa: E402

SECTIONS = ("data", "throughput", "profile", "loader", "train", "ensemble", "overhead", "share")


def test_plans_cover_every_section_and_every_speed_setting():
    for smoke in (True, False):
        plan = plan_for(smoke, cuda=False)
        assert set(plan) == set(SECTIONS) - {"overhead"} | {"ensemble"}
        variants = plan["throughput"]["variants"]
        assert {v["memory_format"] for v in variants} == {"contiguous", "channels_last"}
        assert {v["compile"] for v in variants} == {False, True}
        assert len(plan["train"]["members"]) >= 2
    assert {v["amp"] for v in full_variants()} == {"none", "bf16"}
    first = full_variants()[0]  # the recipe's default comes first: a budget cut never drops it
    assert (first["arch"], first["encoder"], first["amp"], first["memory_format"], first["compile"]) == (
        "UnetPlusPlus",
        "efficientnet-b3",
        "bf16",
        "contiguous",
        False,
    )


def test_a_stalled_variant_is_reported_as_a_timeout(tmp_path):
    result = run_json(["-c", "import time; time.sleep(30)"], tmp_path / "never.json", timeout_s=2)
    assert result["status"] == "timeout" and "2 s" in result["error"]
    failed = run_json(["-c", "raise SystemExit('bad variant')"], tmp_path / "never.json", timeout_s=30)
    assert failed["status"] == "error" and "bad variant" in failed["error"]


def test_summary_has_a_heading_per_section_and_shows_failures():
    results = {
        "mode": "smoke",
        "machine": {"device": "cpu"},
        "data": {"status": "ok", "splits": {"train": 2}, "synth_s": 1.0, "prepare_s": 1.0, "section_s": 2},
        "throughput": {"status": "ok", "rows": [], "section_s": 1},
        "profile": {"status": "ok", "rows": [], "section_s": 1},
        "loader": {"status": "ok", "rows": [{"workers": 0, "images_per_s": 10.0, "per_worker": 10.0}]},
        "train": {"status": "error", "error": "ValueError: boom"},
        "ensemble": {"status": "error", "error": "RuntimeError: no manifest"},
        "overhead": {"status": "ok", "ms_per_image": {"full pipeline": 3.0}},
        "share": {"status": "skipped", "error": "no CUDA device"},
    }
    text = results_report.markdown(results)
    assert text.count("\n## ") == len(SECTIONS)
    assert "**error**: ValueError: boom" in text and "**skipped**: no CUDA device" in text
    assert "| full pipeline | 3.00 |" in text


def test_gpu_check_imports_no_ray():
    # Ray and Optuna are not among the wheels carried to the GPU machine (benchmarks/gpu_check.sh).
    code = (
        "import sys, benchmarks.gpu_check.__main__, benchmarks.gpu_check.op_profile, ensemble.cli.run_command; "
        "sys.exit(any(m.split('.')[0] in ('ray', 'optuna') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO).returncode == 0


@pytest.mark.slow  # ~30 s on a quiet 2-core box, minutes on a loaded one
def test_smoke_run_writes_every_section(tmp_path):
    out = tmp_path / "check"
    env = {"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", "--smoke", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert {k: results[k]["status"] for k in SECTIONS} == {
        **{k: "ok" for k in SECTIONS},
        "share": "skipped",  # no CUDA here
    }
    assert results["ray_imported"] is False
    rows = results["throughput"]["rows"]
    assert {r["compile"] for r in rows} == {False, True} and all(r["images_per_s"] > 0 for r in rows)
    assert json.loads((out / "profile_after.json").read_text())["top_ops"]
    assert [m["arch"] for m in results["train"]["members"]] == ["FPN", "Unet"]
    trials = pd.read_csv(out / "models" / "trials.csv")
    assert (trials[["first_step_s", "first_epoch_s", "epoch_s"]] > 0).all().all()
    assert (out / "submission" / "submission.csv").is_file()
    assert results["overhead"]["ms_per_image"]
    assert "## Two trainings sharing one GPU" in (out / "summary.md").read_text()
