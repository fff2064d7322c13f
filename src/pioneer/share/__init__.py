"""Sharing and deploying a trained model: Hugging Face Hub folders and model cards, ONNX and TorchScript export."""
