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
