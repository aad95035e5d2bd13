"""Batch anomaly scoring: one ONNX one-class SVM per (device, sensor), Blob Storage or a local
folder, a local parallel runner and the same entry script as an Azure ML parallel job.

See docs/batch_scoring.md.
"""
