"""Drive the demo page in headless Chromium: upload a file in the codec tab, run it, save a screenshot.

    python -m demo.screenshot                    # the shipped codec on the bundled example -> docs/demo_codec_tab.png

Uses Debian's /usr/bin/chromium and /usr/bin/chromedriver through Selenium (nothing is downloaded); the
browser test (tests/test_demo_browser.py) runs the same steps on a tiny model.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH = 1400
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "demo_codec_tab.png"


def browser_missing() -> str | None:
    """Why the browser steps cannot run here (None when they can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if shutil.which(path) is None:
            return f"{path} not found (apt-get install {package})"
    return None


def _driver(height: int = 1600):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={WIDTH},{height}", "--hide-scrollbars", "--mute-audio"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def capture_codec_tab(url: str, audio: str | Path, out: str | Path, timeout: float = 120.0) -> dict[str, str]:
    """Upload `audio` in the codec tab of the page at `url`, press Encode and decode, wait for the reconstruction's
    audio player, save a full-page screenshot to `out`; returns what the page then shows (status, the
    reconstruction's URL and its duration as the player writes it)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _driver()
    try:
        driver.get(url)
        wait = WebDriverWait(driver, timeout)
        upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#codec-input input[type=file]"))
        upload.send_keys(str(Path(audio).resolve()))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#codec-input audio"))  # the upload is in
        driver.find_element(By.CSS_SELECTOR, "#codec-run").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#codec-reconstruction audio"))  # the player is there
        link = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#codec-reconstruction a[data-testid=download-link]"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#codec-grid img")) == 1)
        status = driver.find_element(By.CSS_SELECTOR, "#codec-status").text
        duration = driver.find_element(By.CSS_SELECTOR, "#codec-reconstruction time#duration").text
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(WIDTH, int(height) + 40)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not driver.save_screenshot(str(out)):
            raise RuntimeError(f"the browser could not write {out}")
        return dict(status=status, audio_url=link.get_attribute("href") or "", duration=duration)
    finally:
        driver.quit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.screenshot", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="codec preset or folder (default: the shipped cat-small-16k)")
    parser.add_argument("--audio", default=None, help="file to upload (default: the bundled example)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"PNG to write (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    missing = browser_missing()
    if missing:
        parser.error(missing)

    from catcodec import CATModel
    from catcodec.cli import EXAMPLE_AUDIO
    from catcodec.presets import DEFAULT_MODEL

    from .app import build_app, launch
    from .models import load_asr, load_tts

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    name = args.model or DEFAULT_MODEL
    codec = CATModel.from_pretrained(name).eval()
    tts, tts_note = load_tts(None, codec, name)
    asr, asr_note = load_asr(None, codec, name)
    app = build_app(codec, tts, asr, codec_name=name, tts_note=tts_note, asr_note=asr_note)
    url = launch(app, port=0, block=False, quiet=True)
    try:
        shown = capture_codec_tab(url, args.audio or EXAMPLE_AUDIO, args.out)
    finally:
        app.close()
    print(f"wrote {args.out}: {shown['status'].splitlines()[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
