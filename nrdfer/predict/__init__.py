"""Inference on any video (``nrdfer predict``) and ONNX export (``nrdfer export``).

- :mod:`.loading`: a model file -> the model plus how its inputs were prepared (face detection
  and alignment, enhancement, the test-protocol U x V sampling), so no params.yaml is needed.
- :mod:`.decode`: streaming PyAV decoding with timestamps, and the window timeline.
- :mod:`.predictor`: decode, detect + track + align, enhance, sample, classify one video.
- :mod:`.plot`: the paper's Fig. 5 for any video (imports matplotlib lazily).
- :mod:`.export`: ONNX export of the model with the snippet-based filter, checked against
  PyTorch with onnxruntime (imports onnx/onnxruntime lazily).
"""
