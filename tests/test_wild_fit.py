"""ensemble fit --wild (ensemble.fit.wild_fit): the photo path's options chosen on wild scenes."""

from __future__ import annotations

from ensemble.core.inference import Ensemble
from ensemble.core.recipe import Recipe, WildChoice
from ensemble.faces.photo_parser import WildParser
from ensemble.fit.wild_fit import fit_wild
from ensemble.postprocess.face_regions import Face

from ensemble_fixtures import PaletteModel, member
from test_wild_photos import _long_haired_scene
from wild_scenes import drawn_framing


def test_fit_chooses_the_context_view_where_hair_reaches_past_the_crop():
    image, labels, box = _long_haired_scene()
    detector = lambda img: [Face(tuple(map(float, box)), 1.0)]  # noqa: E731
    parser = WildParser(Ensemble([member(PaletteModel())]), [], drawn_framing(), detector=detector, context=1.0)
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
