"""The demo page in headless Chromium (Debian's chromium + chromium-driver through Selenium): upload a file in
the codec tab, run it, wait for the reconstruction's audio element, save a screenshot."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("gradio", reason="the demo needs gradio (pip install -e '.[demo]')")
pytest.importorskip("matplotlib", reason="the demo draws its pictures with matplotlib")
from demo.screenshot import browser_missing, capture_codec_tab  # noqa: E402

MISSING = browser_missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"no headless browser: {MISSING}")


def test_codec_tab_in_a_browser(tmp_path):
    from catcodec import CATConfig, CATModel
    from demo.app import build_app, launch
    from helpers.tiny import TINY

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    codec = CATModel(CATConfig(**TINY)).float().eval()
    t = np.arange(16000) / 16000
    audio = tmp_path / "hello.wav"
    sf.write(audio, (0.3 * np.sin(2 * np.pi * (150 * t + 400 * t**2))).astype(np.float32), 16000)
    app = build_app(codec, codec_name="tiny-test-codec")
    try:
        url = launch(app, port=0, block=False, quiet=True)
        shown = capture_codec_tab(url, audio, tmp_path / "codec_tab.png", timeout=60)
    finally:
        app.close()
        torch.set_num_threads(threads)
    assert "8 codebooks = 2.4 kbps" in shown["status"] and "50 frames x 8 codebooks = 400 tokens" in shown["status"]
    assert "/gradio_api/file=" in shown["audio_url"] and shown["audio_url"].endswith(".wav")  # the page plays the wav
    assert shown["duration"] == "0:01"
    from PIL import Image

    with Image.open(tmp_path / "codec_tab.png") as im:
        assert im.format == "PNG" and im.size[0] == 1400 and im.size[1] > 900
