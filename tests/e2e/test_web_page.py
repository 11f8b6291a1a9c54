"""The web page of ``mmser serve`` in a real headless browser (Debian's chromium + chromium-driver, Selenium):
upload a clip, and the bars show the probabilities the HTTP API gives for it; a long recording shows its timeline;
a recording from the microphone is sent at 16 kHz, and Live streams it segment by segment. Slow tier. The
README's screenshot is this test run on a RAVDESS checkpoint:

    MMSER_WEB_CHECKPOINT=runs/ravdess/robustness_telephone_running/ravdess_select_wave_aug_running_prior3/fold0/model.safetensors \\
    MMSER_WEB_CLIP=../shared/data/ravdess/Actor_01/03-01-05-01-01-01-01.flac \\
    MMSER_WEB_SCREENSHOT=results/web/page.png python -m pytest -m slow tests/e2e/test_web_page.py -k bars
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SENTENCES, write_tone

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(checkpoint):
    yield from serving(os.environ.get("MMSER_WEB_CHECKPOINT") or str(checkpoint))


def serving(ckpt: str):
    """``mmser serve --checkpoint ckpt`` on a free port: yields its URL, stops it after."""
    pytest.importorskip("selenium")
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mmser.cli", "serve", "--checkpoint", ckpt, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"server did not start: {proc.stderr.read()[-2000:]}")
    try:
        yield url
    finally:  # also when the test using it fails
        proc.terminate()
        proc.wait(timeout=30)


def headless_chromium(*extra: str):
    """Debian's chromium under Selenium, headless, with a fake microphone (a beep, or what ``extra`` says)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,900",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",  # a beeping microphone
                "--autoplay-policy=no-user-gesture-required", *extra):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


@pytest.fixture
def browser():
    driver = headless_chromium()
    yield driver
    driver.quit()


def upload(browser, url: str, clip: Path, timeline: bool = False) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url + "/")
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    browser.find_element(By.ID, "file").send_keys(str(clip.resolve()))
    if timeline:
        browser.find_element(By.ID, "as-timeline").click()
    browser.find_element(By.ID, "send").click()
    WebDriverWait(browser, 120).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-done") == "1")


def test_bars_show_the_api_probabilities(server, browser, tmp_path):
    import httpx
    from selenium.webdriver.common.by import By

    clip = Path(os.environ.get("MMSER_WEB_CLIP") or write_tone(tmp_path / "clip.wav", seconds=1.5, freq=240.0))
    upload(browser, server, clip)
    api = httpx.post(f"{server}/predict", files={"audio": (clip.name, clip.read_bytes())}, timeout=120).json()
    rows = browser.find_elements(By.CSS_SELECTOR, "#bars .bar-row")
    shown = {r.get_attribute("data-label"): float(r.get_attribute("data-probability")) for r in rows}
    assert set(shown) == set(api["probabilities"])
    assert np.allclose([shown[k] for k in api["probabilities"]], list(api["probabilities"].values()), atol=1e-6)
    assert browser.find_element(By.ID, "label").text == api["label"]
    widths = {r.get_attribute("data-label"): r.find_element(By.CLASS_NAME, "bar").size["width"] for r in rows}
    top = max(api["probabilities"], key=api["probabilities"].get)
    assert widths[top] == max(widths.values()) > 0  # the drawn bars follow the numbers
    shot = Path(os.environ.get("MMSER_WEB_SCREENSHOT") or tmp_path / "page.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def test_long_recording_shows_its_timeline(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    import soundfile as sf

    rate = 16_000
    tone = lambda f, s: (0.3 * np.sin(2 * np.pi * f * np.arange(int(s * rate)) / rate)).astype(np.float32)  # noqa: E731
    silence = np.zeros(rate, np.float32)
    clip = tmp_path / "long.wav"
    sf.write(clip, np.concatenate([silence, tone(220, 2.0), silence, tone(330, 2.0), silence]), rate)
    upload(browser, server, clip, timeline=True)
    rows = browser.find_elements(By.CSS_SELECTOR, "#segments tr")
    assert rows and not browser.find_element(By.ID, "timeline").get_attribute("hidden")
    statuses = [r.find_elements(By.TAG_NAME, "td")[2].text for r in rows]
    assert set(statuses) <= {"speech", "too_short", "silence"} and "silence" in statuses


def test_a_clip_recorded_below_16k_is_noted_on_the_page(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    upload(browser, server, write_tone(tmp_path / "phone.wav", seconds=1.5, sr=8000))
    shown = browser.find_element(By.ID, "status").text
    assert "phone.wav" in shown and "below 16000 Hz" in shown and browser.find_element(By.ID, "label").text


# Firefox's rule, which Chromium does not have: a microphone joins only a context at the device's own rate
FIREFOX_MICROPHONE_RULE = """
const own = new AudioContext().sampleRate;
const original = AudioContext.prototype.createMediaStreamSource;
AudioContext.prototype.createMediaStreamSource = function (stream) {
  if (this.sampleRate !== own) throw new DOMException("Connecting AudioNodes from AudioContexts with different "
                                                      + "sample-rate is currently not supported.", "NotSupportedError");
  return original.call(this, stream);
};
window.uploads = [];
const post = window.fetch;
window.fetch = async (url, init) => {
  if (init && init.body instanceof FormData) {
    const head = new DataView(await init.body.get("audio").slice(0, 44).arrayBuffer());
    window.uploads.push({url, rate: head.getUint32(24, true), bytes: head.getUint32(40, true), own});
  }
  return post(url, init);
};
"""


def test_a_microphone_recording_is_sent_at_16k_under_firefoxs_rule(server, browser):
    """Record and stop: the page captures at the device's own rate (Firefox refuses a microphone in a context of
    another rate; the rule is put into Chromium here) and uploads a 16 kHz WAV as long as the recording, whose
    prediction the page shows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/")
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    browser.execute_script(FIREFOX_MICROPHONE_RULE)
    browser.find_element(By.ID, "record").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "stop").is_enabled())
    started = time.time()
    time.sleep(2.0)
    browser.find_element(By.ID, "stop").click()
    held = time.time() - started
    WebDriverWait(browser, 120).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-done") == "1")
    [sent] = browser.execute_script("return window.uploads")
    assert sent["url"] == "/predict" and sent["rate"] == 16_000
    assert sent["own"] != 16_000  # the device's own rate differs, so the conversion was exercised
    assert 1.0 < sent["bytes"] / 2 / 16_000 <= held + 0.5  # seconds: the recording, not its length at another rate
    assert browser.find_element(By.ID, "label").text


def test_live_mode_shows_each_segment_as_the_stream_closes_it(server, recording, tmp_path):
    """Live: the microphone (here Chromium playing the spoken sentences as its fake capture) streams to WS /stream at
    the device's own rate under Firefox's rule; each sentence appears as a speech segment with its emotion while
    the stream runs, and Stop live ends the stream with its summary."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    path, spans = recording
    driver = headless_chromium(f"--use-file-for-fake-audio-capture={path}%noloop")
    try:
        driver.get(server + "/")
        WebDriverWait(driver, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
        driver.execute_script(FIREFOX_MICROPHONE_RULE)
        driver.find_element(By.ID, "live").click()
        speech_rows = lambda d: [r for r in d.find_elements(By.CSS_SELECTOR, "#segments tr")  # noqa: E731
                                 if r.find_elements(By.TAG_NAME, "td")[2].text == "speech"]
        WebDriverWait(driver, 60).until(lambda d: len(speech_rows(d)) >= 2)  # shown while the stream runs
        assert driver.find_element(By.ID, "live-stop").is_enabled()
        own = driver.execute_script("return new AudioContext().sampleRate")
        assert f"live at {own} Hz" in driver.find_element(By.ID, "status").text and own != 16_000
        WebDriverWait(driver, 60).until(lambda d: len(speech_rows(d)) >= len(SENTENCES))
        driver.find_element(By.ID, "live-stop").click()
        WebDriverWait(driver, 60).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-done") == "1")
        WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "live").is_enabled())
        rows = speech_rows(driver)
        assert len(rows) == len(SENTENCES)  # the closing "hey" is too short to classify
        labels = set(driver.execute_script("return labels"))
        assert all(r.find_elements(By.TAG_NAME, "td")[3].text in labels for r in rows)
        starts = np.array([float(r.find_elements(By.TAG_NAME, "td")[0].text) for r in rows])
        expected = np.array([start for start, _, _ in spans[:len(SENTENCES)]])
        assert np.abs(np.diff(starts) - np.diff(expected)).max() < 0.5  # s: the sentences as far apart as recorded
        assert "speech segment(s)" in driver.find_element(By.ID, "status").text
        assert not driver.find_element(By.ID, "status").get_attribute("class")
    finally:
        driver.quit()


def test_live_is_disabled_with_the_reason_for_a_model_that_cannot_stream(checkpoint, browser, tmp_path):
    from dataclasses import replace

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from mmser.checkpoint import load_checkpoint, save_checkpoint
    from mmser.features.spec import SpeakerNorm
    from tests.conftest import tiny_features

    enrolled = tmp_path / "enrol.safetensors"
    save_checkpoint(enrolled, load_checkpoint(checkpoint).members,
                    replace(tiny_features(), speaker_norm=SpeakerNorm("enrol", clips=3)), None, {})
    for url in serving(str(enrolled)):
        browser.get(url + "/")
        WebDriverWait(browser, 30).until(lambda d: not d.find_element(By.ID, "live").is_enabled())
        assert "enrolment clips" in browser.find_element(By.ID, "live").get_attribute("title")
        assert browser.find_element(By.ID, "record").is_enabled()  # uploads and recordings still work


def test_the_page_needs_nothing_from_elsewhere():
    page = (Path(__file__).parents[2] / "mmser" / "web" / "index.html").read_text()
    assert "http://" not in page and "https://" not in page and "<script src" not in page and "@import" not in page
