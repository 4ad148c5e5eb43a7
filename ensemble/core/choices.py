"""The names the command-line flags offer, importable without what implements them (torch, smp),
so that every `--help` starts in well under a second.

The registries keep their own dicts (name -> implementation); tests/test_cli_startup.py checks
each one lists exactly these names.
"""

TTA_MODES = ("none", "flip", "flip+scale")  # ensemble.core.tta.TTA_MODES (views per mode)
WEIGHT_MODES = ("uniform", "score")  # ensemble.core.member_weights.WEIGHT_MODES
DETECTORS = ("mtcnn", "dlib", "parser", "none")  # ensemble.faces.detect.DETECTORS
TEACHER_MODES = ("auto", "cache", "on-the-fly")  # ensemble.distill.student: cached or on the fly
EXPORT_FORMATS = ("onnx", "smp")  # ensemble.export.model_export
ONNX_OPSET = 17  # default opset of `python -m ensemble export --format onnx`
DEVICES = ("auto", "cpu", "cuda")  # tuning.models.resolve_device: auto is cuda when available


def detector_problem(name: str) -> str | None:
    """Why `name` is no detector (None when it is one): "auto", a DETECTORS name, or distinct ones
    joined by "+" (a union, ensemble.faces.detect.DetectorUnion) without "none" or "auto"."""
    names = name.split("+")
    if name == "auto" or (len(names) == 1 and name in DETECTORS):
        return None
    if (
        len(names) > 1
        and all(n in DETECTORS and n != "none" for n in names)
        and len(set(names)) == len(names)
    ):
        return None
    return (
        f"unknown detector {name!r}: expected auto, one of {', '.join(DETECTORS)}, or distinct ones "
        f"joined by + (join distinct detectors, e.g. mtcnn+parser)"
    )


def detector_arg(name: str) -> str:
    """argparse type of --detector and --wild-detector."""
    import argparse

    problem = detector_problem(name)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return name
