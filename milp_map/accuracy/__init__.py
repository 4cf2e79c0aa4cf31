"""From a mapping to measured accuracy: Hessian sensitivities (torch), the mapped ONNX export,
onnxruntime top-1, and the proxy -> accuracy-drop calibration."""
