"""ensemble fit --wild (ensemble.fit.wild_fit): the photo path's options chosen on wild scenes."""

from __future__ import annotations

from ensemble.core.inference import Ensemble
from ensemble.core.recipe import Recipe, WildChoice
from ensemble.faces.photo_parser import WildParser
from ensemble.fit.wild_fit import fit_wild
from ensemble.postprocess.face_regions import Face

from ensemble_fixtures import PaletteModel, member
from wild_scenes import drawn_framing, long_haired_scene, make_scene


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
    assert set(wild.steps) == {"face_clip", "glasses_to_skin", "eye_repair", "clothes_below"}
    assert wild.data["scenes"] == 1 and wild.data["dataset"] == "scenes"
    # ... and the recipe carries it (an older recipe without "wild" still reads).
    recipe = Recipe(manifest="m.json", members={"m": 1.0}, views=["plain"], postprocess={}, wild=wild)
    assert Recipe.model_validate(recipe.model_dump(mode="json")).wild == wild
    assert Recipe(manifest="m.json", members={"m": 1.0}, views=["plain"], postprocess={}).wild is None
    assert WildChoice().context == 2.0


def test_fit_tries_a_face_step_the_recipe_kept_off_and_keeps_one_that_does_no_harm():
    from configs.schema import PostprocessConfig
    from ensemble.postprocess.registry import build_steps

    image, labels, box = long_haired_scene()
    detector = lambda img: [Face(tuple(map(float, box)), 1.0)]  # noqa: E731
    # The aligned fit kept face_clip with scales that clear the face here, and eye_repair.
    post = PostprocessConfig(face_clip=True, face_clip_scales=(0.2, 0.2, 0.2), eye_repair=True)
    ens = Ensemble([member(PaletteModel())], postprocess=post)
    parser = WildParser(ens, build_steps(post), drawn_framing(), detector=detector, context=2.0)
    wild = fit_wild(parser, [(image, labels)], progress=False)
    tried = {t["option"]: t for t in wild.scores["tried"]}
    assert tried["face_clip"]["value"] is False and tried["face_clip"]["kept"]
    assert wild.steps["face_clip"] is False  # photos run without it
    assert tried["eye_repair"]["value"] is False and not tried["eye_repair"]["kept"]
    assert wild.steps["eye_repair"] is True  # still on, as the recipe had it
    assert tried["glasses_to_skin"]["value"] is True  # off in the recipe: tried on


def test_fit_joins_the_parsers_windows_to_a_detector_that_misses_a_face(monkeypatch):
    from ensemble.faces import detect

    image, labels, boxes = make_scene(240, 320, [(30, 40, 90), (190, 90, 100)], seed=2)

    class FirstFaceOnly:  # a detector that finds one of the two faces (as MTCNN misses drawn faces)
        name = "dlib"

        def __call__(self, photo):
            return [Face(tuple(map(float, boxes[0])), 1.0, found_by="dlib")]

    monkeypatch.setitem(detect.DETECTORS, "dlib", lambda *args: FirstFaceOnly())
    parser = WildParser(Ensemble([member(PaletteModel())]), [], drawn_framing(), detector="dlib", context=1.5)
    assert len(parser(image).faces) == 1
    wild = fit_wild(parser, [(image, labels)], progress=False)
    assert wild.detector == "dlib+parser"
    assert ("detector", "dlib+parser") in {(t["option"], t["value"]) for t in wild.scores["tried"]}
    assert wild.scores["final"] > wild.scores["start"] + 0.05
    joined = WildParser(parser.ensemble, [], parser.framing, detector=wild.detector)(image).faces
    assert sorted(f.found_by for f in joined) == ["dlib", "parser"]


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
