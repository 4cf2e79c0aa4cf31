"""Files in, data out: ONNX models and the zoo, platform YAML, score, mapping and CSV files,
datasets; `load_problem`, the one problem factory; and the one writer of output files."""
