"""Export scripts: framework models to ONNX (and TensorRT plans on GPU) and repository builds."""
