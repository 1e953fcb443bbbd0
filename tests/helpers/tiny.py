"""The tiny CAT configuration the tests share: hop 320 samples (50 frames/s at 16 kHz), windows of 200/100/50/25
tokens, so a second of audio already crosses every attention window and fills every ring buffer."""

TINY = dict(
    sampling_rate=16000,
    patch_size=40,
    stage_dims=[32, 32, 32, 48],
    stage_layers=[1, 1, 1, 2],
    stage_heads=[2, 2, 2, 2],
    stage_output_dims=[16, 16, 24, 32],
    quantizer_dim=32,
    num_quantizers=8,
    codebook_size=64,
    attention_window_seconds=0.5,
)
