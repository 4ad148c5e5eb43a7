"""python -m ensemble export: one member as ONNX or an smp save_pretrained folder."""
