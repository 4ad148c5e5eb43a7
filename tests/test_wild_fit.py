"""ensemble fit --wild (ensemble.fit.wild_fit): the photo path's options chosen on wild scenes."""

from __future__ import annotations

from ensemble.core.inference import Ensemble
from ensemble.core.recipe import Recipe, WildChoice
from ensemble.faces.photo_parser import WildParser
from ensemble.fit.wild_fit import fit_wild
from ensemble.postprocess.face_regions import Face

from ensemble_fixtures import PaletteModel, member
from wild_scenes import drawn_framing, long_haired_scene


def test_fit_chooses_the_context_view_where_hair_reaches_past_the_crop():
    image, labels, box = long_haired_scene()
    detector = lambda img: [Face(tuple(map(float, box)), 1.0)]  # noqa: E731
    parser = WildParser(
        Ensemble([member(PaletteModel())]), [], drawn_framing(), detector=detector, context=1.0
    )
    wild = fit_wild(parser, [(image, labels)], {"dataset": "scenes"}, progress=False)
    assert wild.context > 1.0  # the tight crop alone leaves the hair below it unlabelled
    assert wild.scores["final"] > wild.scores["start"] + 0.01
    tried = {(t["option"], t["value"]) for t in wild.scores["tried"]}
    assert ("context", 2.0) in tried and ("second_pass", False) in tried and ("face_clip", True) in tried
    assert set(wild.steps) == {"face_clip", "glasses_to_skin", "eye_repair"}
    assert wild.data["scenes"] == 1 and wild.data["dataset"] == "scenes"
    # ... and the recipe carries it (an older recipe without "wild" still reads).
    recipe = Recipe(manifest="m.json", members={"m": 1.0}, views=["plain"], postprocess={}, wild=wild)
    assert Recipe.model_validate(recipe.model_dump(mode="json")).wild == wild
    assert Recipe(manifest="m.json", members={"m": 1.0}, views=["plain"], postprocess={}).wild is None
    assert WildChoice().context == 2.0


def test_fit_wild_writes_recipe_wild_that_predict_applies(tmp_path, monkeypatch):
    from ensemble.__main__ import main as ensemble_main
    from ensemble.api import Parser
    from ensemble.core.recipe import read_recipe

    from ensemble_fixtures import make_face_dataset, write_manifest

    monkeypatch.setenv("FACEPARSE_MTCNN", str(tmp_path / "none.safetensors"))  # auto: dlib or parser
    prep = make_face_dataset(tmp_path / "prep", {"val": 4, "test": 1}, size=64, seed=5)
    wild = make_face_dataset(tmp_path / "wild", {"val": 2}, size=96, seed=6)
    manifest = write_manifest(tmp_path / "models", [{}])
    args = ["fit", "--manifest", str(manifest), "--data", str(prep.root), "--resolution", "32", "--quiet"]
    assert ensemble_main([*args, "--wild", str(wild.root), "--wild-detector", "parser"]) == 0
    recipe = read_recipe(manifest.parent / "recipe.json")
    assert recipe.wild is not None and recipe.wild.detector == "parser"
    assert recipe.wild.data["scenes"] == 2 and recipe.wild.data["split"] == "val"
    assert recipe.wild.scores["final"] >= recipe.wild.scores["start"]
    parser = Parser.from_manifest(manifest, device="cpu")  # recipe.json beside the manifest
    assert parser.wild.detector == "parser" and parser.wild.context == recipe.wild.context
    assert Parser.from_manifest(manifest, device="cpu", context=1.0).wild.context == 1.0  # flags beat it
