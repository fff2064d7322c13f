"""Using a trained model: the Pioneer facade, its inputs, latent-space operations, figures and face alignment."""
