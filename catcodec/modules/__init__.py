"""Building blocks of the CAT codec: streaming plumbing, Transformer stages, quantizer, encoder/decoder."""
