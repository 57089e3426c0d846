"""The network and where it runs: `CharRNN` and `ModelConfig` (network), its CPU fast paths (fastpaths,
onednn), devices and precision (devices), several models averaged (ensemble), and ONNX export (export)."""
