"""`ensemble fit`: members, views and post-processing chosen on validation data, saved as a recipe."""

from __future__ import annotations

import json

import pytest
import torch

from configs import CLASS_ID
from configs.schema import EnsembleConfig
from ensemble.__main__ import main as ensemble_main
from ensemble.core.recipe import RecipeError, read_recipe
from ensemble.fit.fit_recipe import FitOptions, fit
from run_ensemble import main as run_main
from tuning.models import build_model

from ensemble_fixtures import TINY, PaletteModel, make_face_dataset, member, write_manifest
from faces import DRAWN_CLASSES

# A parser that knows only the classes the test faces have makes no stray classes.
DRAWN = [CLASS_ID[n] for n in DRAWN_CLASSES]


class DenoisedPalette(PaletteModel):
    """A good parser for the fixture faces: the palette rule over the drawn classes only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = super().forward(x)
        off = torch.ones(logits.shape[1], dtype=torch.bool)
        off[DRAWN] = False
        return logits.masked_fill(off.view(1, -1, 1, 1).to(logits.device), -1e4)


class TintedPalette(DenoisedPalette):
    """A weaker parser: it sees colours through a tint, so some parts get confused."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x + 0.35 * torch.tensor([1.0, -0.6, 0.2]).view(1, 3, 1, 1))


def _random_smp() -> torch.nn.Module:
    """An untrained smp model made confident (its head scaled up), as a failed trial would be."""
    torch.manual_seed(0)
    model = build_model(TINY["arch"], TINY["encoder"], None)
    with torch.no_grad():
        for p in model.segmentation_head.parameters():
            p.mul_(20.0)
    return model


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("fit")
    prep = make_face_dataset(root / "prep", {"train": 1, "val": 10, "test": 2}, size=64, seed=3)
    members = [
        member(TintedPalette(), "tinted", val_f1=0.7),
        member(_random_smp(), "random", val_f1=0.9),
        member(DenoisedPalette(), "palette", val_f1=0.8),
    ]
    opts = FitOptions(
        manifest=root / "manifest.json",
        data=prep.root,
        out=root / "recipe.json",
        ensemble=EnsembleConfig(scales=[1.0], batch_size=4, num_workers=0),
        candidate_views="flip",
        resolution=32,
        progress=False,
    )
    recipe = fit(opts, members)
    return recipe, opts, members


def test_the_recipe_gets_its_provenance_beside_it(fitted):
    _, opts, _ = fitted
    provenance = json.loads((opts.out.parent / "recipe.provenance.json").read_text())
    assert provenance["config"] == opts.ensemble.model_dump(mode="json")
    assert provenance["extra"]["options"]["candidate_views"] == "flip" and "packages" in provenance
    assert not {"git", "packages", "created_utc"} & set(json.loads(opts.out.read_text()))


def test_random_candidate_is_never_selected(fitted):
    recipe, _, _ = fitted
    assert "random" not in recipe.members
    assert recipe.decisions["selection"]["counts"]["random"] == 0
    trace = recipe.decisions["selection"]["trace"]
    assert trace[0]["added"] == "palette"  # the best single candidate on val starts the selection
    assert len(trace) > 2  # the greedy search ran past the start (and may try "random" on the way)


def test_fitted_ensemble_scores_at_least_the_best_candidate(fitted):
    recipe, _, _ = fitted
    s = recipe.scores
    assert s["final"]["all"] >= s["best_candidate"]["all"]
    assert s["final"]["confirm"] >= s["best_candidate"]["confirm"]
    singles = recipe.decisions["candidates"]
    assert singles["palette"]["all"] == max(c["all"] for c in singles.values())


def test_steps_and_views_that_hurt_on_val_are_dropped(fitted):
    recipe, _, _ = fitted
    steps = recipe.decisions["postprocess"]
    # At 64 px a wide blur wipes out 2-3 px brows and eyes; a narrow one removes pixel noise.
    hurt = [d for d in steps if d["delta"]["choose"] < 0]
    assert any(d["option"] == "gaussian(sigma=3)" for d in hurt)
    assert not any(d["kept"] for d in hurt)
    for d in steps:
        if d["kept"]:
            assert d["delta"]["choose"] > 0 and d["delta"]["confirm"] >= 0
    kept_sigma = [d["option"] for d in steps if d["stage"] == "smooth" and d["kept"]]
    expected = "none" if not kept_sigma else "gaussian"
    assert recipe.postprocess.smooth == expected
    # The palette rule is not mirror-symmetric (it cannot tell a mirrored left eye from a right
    # one), so flip TTA hurts here and must not be kept.
    assert recipe.views == ["identity"]
    assert recipe.decisions["views"][0]["option"] == "hflip" and not recipe.decisions["views"][0]["kept"]


def test_recipe_round_trips_and_is_checked_against_the_manifest(fitted):
    recipe, opts, members = fitted
    names = [m.name for m in members]
    again = read_recipe(opts.out, names)
    assert again == recipe
    with pytest.raises(RecipeError, match="not in the manifest"):
        read_recipe(opts.out, ["palette"] if "tinted" in recipe.members else ["other"])
    raw = json.loads(opts.out.read_text())
    raw["members"] = {"palette": -1.0}
    bad = opts.out.with_name("bad.json")
    bad.write_text(json.dumps(raw))
    with pytest.raises(RecipeError, match="positive sum"):
        read_recipe(bad, names)


def test_run_with_the_recipe_reproduces_the_fit_val_score(tmp_path, capsys):
    prep = make_face_dataset(tmp_path / "prep", {"val": 6, "test": 2}, size=64, seed=5)
    manifest = write_manifest(tmp_path / "models", [{}, {}, {}])
    assert (
        ensemble_main(
            [
                "fit",
                "--manifest",
                str(manifest),
                "--data",
                str(prep.root),
                "--views",
                "flip",
                "--resolution",
                "32",
                "--quiet",
            ]
        )
        == 0
    )
    recipe_path = manifest.parent / "recipe.json"
    assert (manifest.parent / "fit_report.md").read_text().count("| step |") == 1
    assert (manifest.parent / "selection_trace.png").stat().st_size > 0
    assert "Every decision" in (manifest.parent / "fit_report.html").read_text()
    recipe = read_recipe(recipe_path)
    out = tmp_path / "out"
    # recipe.json beside the manifest is used without being named
    assert (
        run_main(
            [
                "--manifest",
                str(manifest),
                "--images",
                str(prep.root),
                "--split",
                "val",
                "--out",
                str(out),
                "--workers",
                "0",
                "--viz",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert report["recipe"] == str(recipe_path)
    assert report["views"] == recipe.views
    assert {m["name"] for m in report["members"]} == set(recipe.members)
    assert report["stages"][-1]["f1"] == pytest.approx(recipe.scores["final"]["all"], abs=1e-6)
    assert "## Decisions" in (out / "report.md").read_text()
    # A flag beats the recipe; --no-recipe ignores it.
    flagged = tmp_path / "flagged"
    assert (
        run_main(
            [
                "--manifest",
                str(manifest),
                "--images",
                str(prep.root),
                "--out",
                str(flagged),
                "--tta",
                "none",
                "--workers",
                "0",
                "--viz",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads((flagged / "report.json").read_text())["views"] == ["identity"]
    plain = tmp_path / "plain"
    assert (
        run_main(
            [
                "--manifest",
                str(manifest),
                "--images",
                str(prep.root),
                "--out",
                str(plain),
                "--no-recipe",
                "--workers",
                "0",
                "--viz",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads((plain / "report.json").read_text())["recipe"] is None


def test_memory_budget_bounds_the_cache_and_the_full_size_probabilities(fitted, tmp_path):
    _, opts, members = fitted
    # Per image: cache 3 members x 1 view x 19 x 32² x 2 B + labels = 117,760 B; full-size
    # probabilities 19 x 64² x 2 B = 155,648 B. 0.8 MB holds 6 cached images and 5 full-size maps.
    small = FitOptions(
        manifest=opts.manifest,
        data=opts.data,
        out=tmp_path / "recipe.json",
        ensemble=opts.ensemble,
        candidate_views="none",
        resolution=32,
        cache_gb=0.0008,
        progress=False,
    )
    recipe = fit(small, members)
    assert recipe.data["images"] == 6 and recipe.data["postprocess_images"] == 5
    assert recipe.data["cache_gb"] <= 0.0008
    assert recipe.decisions["postprocess"]  # the step stage ran on the 5 kept maps
