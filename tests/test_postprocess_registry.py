"""The post-processing registry contract: every step declares its kind, config fields and fit grid;
`ensemble fit`, `run` and `predict` use the registry alone, so one new class is a new step."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from configs import CLASS_ID
from configs.overrides import load_with_sets
from configs.schema import EnsembleConfig, PostprocessConfig
from ensemble.__main__ import build_parser
from ensemble.cli import run_command as cli_run
from ensemble.core.inference import Ensemble
from ensemble.fit.fit_recipe import FitOptions, fit, postprocess_stages
from ensemble.postprocess.registry import (
    STEPS,
    LabelStep,
    PostprocessError,
    ProbabilityStep,
    Step,
    build_steps,
    plain_config,
    postprocess,
)
from ensemble.postprocess.steps_base import SCHEMA, unregister

from ensemble_fixtures import PaletteModel, make_face_dataset, member

PACKAGE = Path(__file__).resolve().parents[1] / "ensemble" / "postprocess"
RUN_ORDER = [
    "smooth",
    "crf",
    "grabcut",
    "remove_small",
    "fill_holes",
    "face_clip",
    "glasses_to_skin",
    "eye_repair",
    "clothes_below",
]
SKIN, NOSE = CLASS_ID["skin"], CLASS_ID["nose"]


@pytest.fixture
def dummy_step():
    """A step registered by defining it (between fill_holes and face_clip), with two fields of its
    own; removed from the registry afterwards."""

    class NoseToSkin(LabelStep):
        """Relabels nose pixels as skin when on, `strength` times (it records what it was built with)."""

        key, order = "nose_to_skin", 55
        switch = "nose_to_skin"
        fields = {"nose_to_skin": (bool, False), "nose_to_skin_strength": (int, 1)}
        built: list[int] = []
        calls: list[int] = []

        def __init__(self, strength: int = 1):
            self.strength = strength
            NoseToSkin.built.append(strength)

        @classmethod
        def from_config(cls, cfg):
            v = cls.values(cfg)
            return cls(v.nose_to_skin_strength) if v.nose_to_skin else None

        def __call__(self, ctx) -> None:
            NoseToSkin.calls.append(self.strength)
            ctx.labels[ctx.labels == NOSE] = SKIN

    try:
        yield NoseToSkin
    finally:
        unregister("nose_to_skin")
    assert list(STEPS) == RUN_ORDER


def test_registry_runs_the_steps_in_the_order_they_declare():
    assert list(STEPS) == RUN_ORDER
    orders = [s.order for s in STEPS.values()]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)


@pytest.mark.parametrize("key", RUN_ORDER)
def test_each_step_declares_one_kind_its_fields_and_a_grid(key):
    step = STEPS[key]
    assert issubclass(step, ProbabilityStep) != issubclass(step, LabelStep)
    assert step.kind == ("probabilities" if issubclass(step, ProbabilityStep) else "labels")
    assert step.key == key and step.switch in step.fields
    for name, spec in step.fields.items():
        assert spec is SCHEMA and name in PostprocessConfig.model_fields
    grid = step.grid()
    assert isinstance(grid, list) and grid
    for label, update in grid:
        assert isinstance(label, str) and label
        assert set(update) <= set(step.fields)  # an option sets only the step's own fields
        on = plain_config().model_copy(update=update)
        if step.available():
            assert [type(s) for s in build_steps(on)] == [step]  # each option turns the step on


def test_every_postprocess_field_belongs_to_exactly_one_step():
    owners = [name for s in STEPS.values() for name in s.fields]
    assert sorted(owners) == sorted(PostprocessConfig.model_fields)


def test_fit_options_and_the_plain_start_are_unchanged():
    labels = [label for key in RUN_ORDER for label, _ in STEPS[key].grid()]
    assert labels == [
        "gaussian(sigma=0.5)",
        "gaussian(sigma=1)",
        "gaussian(sigma=1.5)",
        "gaussian(sigma=2)",
        "gaussian(sigma=3)",
        "crf",
        "grabcut",
        "remove_small(min_fraction=0.05)",
        "remove_small(min_fraction=0.1)",
        "remove_small(min_fraction=0.2)",
        "remove_small(min_fraction=0.4)",
        "fill_holes",
        "face_clip",
        "glasses_to_skin",
        "eye_repair",
        "clothes_below",
    ]
    # The recipe of a fit that keeps nothing: the same JSON as before the registry.
    assert json.dumps(plain_config().model_dump(mode="json")) == json.dumps(
        {
            "smooth": "none",
            "sigma": 0.0,
            "remove_small": False,
            "min_component_fraction": 0.2,
            "fill_holes": False,
            "grabcut": False,
            "crf": False,
            "face_clip": False,
            "face_clip_scales": [0.9, 1.3, 1.1],
            "glasses_to_skin": False,
            "eye_repair": False,
            "clothes_below": False,
        }
    )
    assert build_steps(plain_config()) == []


def test_fit_tries_exactly_the_registered_steps_that_can_run(dummy_step):
    stages = list(postprocess_stages())
    expected = [k for k in RUN_ORDER if STEPS[k].available()]
    expected.insert(expected.index("fill_holes") + 1, "nose_to_skin")
    assert [stage for stage, _ in stages] == expected
    options = dict(stages)["nose_to_skin"](plain_config())
    assert [label for label, _ in options] == ["nose_to_skin"]
    assert options[0][1].model_extra == {"nose_to_skin": True}
    smooth = dict(stages)["smooth"](plain_config())
    assert [cfg.sigma for _, cfg in smooth] == [0.5, 1.0, 1.5, 2.0, 3.0]


def test_fit_decides_on_a_newly_registered_step(dummy_step, tmp_path):
    prep = make_face_dataset(tmp_path / "prep", {"val": 4}, size=48, seed=1)
    opts = FitOptions(
        manifest=tmp_path / "manifest.json",
        data=prep.root,
        out=tmp_path / "recipe.json",
        ensemble=EnsembleConfig(scales=[1.0], batch_size=4, num_workers=0),
        candidate_views="none",
        resolution=24,
        progress=False,
    )
    recipe = fit(opts, [member(PaletteModel(), "a"), member(PaletteModel(), "b")])
    decided = [d for d in recipe.decisions["postprocess"] if d["stage"] == "nose_to_skin"]
    assert [d["option"] for d in decided] == ["nose_to_skin"]
    assert dummy_step.calls  # it ran on the kept probability maps
    stages = [d["stage"] for d in recipe.decisions["postprocess"]]
    assert stages.index("nose_to_skin") > stages.index("fill_holes")
    # The recipe records the new step's setting (an extra key after the schema's fields).
    written = json.loads(opts.out.read_text())["postprocess"]
    assert list(written)[: len(PostprocessConfig.model_fields)] == list(PostprocessConfig.model_fields)
    assert written["nose_to_skin"] == decided[0]["kept"]


def test_a_new_steps_fields_set_in_the_config_reach_it(dummy_step):
    cfg = load_with_sets(
        None, ["ensemble.postprocess.nose_to_skin=true", "ensemble.postprocess.nose_to_skin_strength=3"]
    ).ensemble.postprocess
    steps = build_steps(cfg)
    assert [s.name for s in steps] == ["gaussian", "remove_small", "fill_holes", "nose_to_skin"]
    assert steps[-1].strength == 3
    labels = np.full((16, 16), SKIN, np.uint8)
    labels[4:8, 4:8] = NOSE
    probs = np.zeros((19, 16, 16), np.float32)
    np.put_along_axis(probs, labels[None].astype(np.int64), 1.0, axis=0)
    assert (postprocess(probs, [steps[-1]]) == SKIN).all()
    # Its own fields are validated like the schema's, with a one-line error.
    bad = cfg.model_copy(update={"nose_to_skin_strength": "lots"})
    with pytest.raises(PostprocessError, match=r"^ensemble\.postprocess\.nose_to_skin_strength: .*lots"):
        build_steps(bad)
    # Off by its default when the config does not mention it.
    assert "nose_to_skin" not in [s.name for s in build_steps(PostprocessConfig())]


def test_an_unknown_postprocess_key_fails_clearly_when_steps_are_built():
    cfg = load_with_sets(None, ["ensemble.postprocess.sigmaa=2"]).ensemble.postprocess  # kept by the schema
    with pytest.raises(PostprocessError) as err:
        build_steps(cfg)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("ensemble.postprocess.sigmaa: no post-processing step reads this key")
    assert "sigma, " in message and "eye_repair" in message  # the known keys are listed
    # `run` and `predict` build their steps before loading any model.
    ens = cli_run.ensemble_config(
        build_parser().parse_args(RUN_BASE + ["--set", "ensemble.postprocess.sigmaa=2"])
    )
    with pytest.raises(PostprocessError, match="sigmaa"):
        # what the run and the photo parser do: the steps are built before any model is loaded
        Ensemble.from_manifest("no-such-manifest.json", config=ens, use_recipe=False, before_load=build_steps)
    # Keys of other sections are still checked by the schema itself.
    with pytest.raises(Exception, match="no such config key"):
        load_with_sets(None, ["ensemble.sigmaa=2"])


def test_a_step_that_breaks_the_contract_is_refused_when_defined():
    with pytest.raises(TypeError, match="ProbabilityStep or LabelStep"):

        class Neither(Step):
            key, order, switch, fields = "neither", 99, "neither", {"neither": (bool, False)}

    with pytest.raises(TypeError, match="order 40 is taken by 'remove_small'"):

        class Clash(LabelStep):
            key, order, switch, fields = "clash", 40, "clash", {"clash": (bool, False)}

    with pytest.raises(TypeError, match="SCHEMA only for PostprocessConfig's own fields"):

        class Undeclared(LabelStep):
            key, order, switch, fields = "undeclared", 99, "undeclared", {"undeclared": SCHEMA}

    assert list(STEPS) == RUN_ORDER


RUN_BASE = ["run", "--manifest", "m.json", "--images", "imgs", "--out", "out"]


def test_step_flag_turns_any_registered_step_on_or_off(dummy_step):
    def explicit(*flags):
        return cli_run.explicit_settings(build_parser().parse_args(RUN_BASE + list(flags)))

    assert explicit("--step", "face_clip", "--step", "fill_holes=off") == {
        "postprocess.face_clip": True,
        "postprocess.fill_holes": False,
    }
    assert explicit("--step", "nose_to_skin=on") == {"postprocess.nose_to_skin": True}
    plain = explicit("--no-postprocess")
    assert plain == {f"postprocess.{s.switch}": s.off()[s.switch] for s in STEPS.values()}
    assert plain["postprocess.smooth"] == "none" and "postprocess.sigma" not in plain
    assert explicit("--no-postprocess", "--step", "smooth")["postprocess.smooth"] == "gaussian"
    ens = cli_run.ensemble_config(build_parser().parse_args(RUN_BASE + ["--step", "nose_to_skin"]))
    assert [s.name for s in build_steps(ens.postprocess)][-1] == "nose_to_skin"
    with pytest.raises(SystemExit):
        build_parser().parse_args(RUN_BASE + ["--step", "sharpen"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(RUN_BASE + ["--step", "smooth=maybe"])


def test_predict_face_flags_and_step_flag_agree():
    parse = build_parser().parse_args
    args = parse(
        ["predict", "p.png", "--manifest", "m.json", "--out", "o", "--face-clip", "--step", "eye_repair"]
    )
    assert args.face_clip and args.steps == [("eye_repair", True)]


def test_no_step_module_imports_torch_at_module_level():
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only; `if TYPE_CHECKING:` blocks are not run
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n == "torch" or n.startswith("torch.") for n in names), path.name
