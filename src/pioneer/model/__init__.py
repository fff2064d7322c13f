"""The networks and their losses: layers, Encoder / Decoder, spectral-norm vectors, KL and the PIONEER losses."""
