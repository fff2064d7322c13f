"""The run folder: file names and discovery, checkpoints, logs (JSONL, TensorBoard), plots and the report."""
