"""The viewer site in a real headless browser: Chromium from the Debian packages, driven by
Selenium (pointed at /usr/bin/chromedriver and /usr/bin/chromium, so Selenium Manager never
downloads anything). Install the browser with ``make browser``: without it this test FAILS."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vst.engine.writer import iter_rows, list_shards

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        found = shutil.which("chromium"), shutil.which("chromedriver")
        pytest.fail(
            f"Chromium and chromedriver are needed at {CHROMIUM} and {CHROMEDRIVER} (found "
            f"{found}): run `make browser` (apt-get install -y chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1600",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _open(driver, page: Path) -> None:
    """Load ``page`` from disk and wait until it and its images are loaded."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(page.as_uri())
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script(
            "return document.readyState === 'complete' && "
            "Array.from(document.images).every(i => i.complete)"
        )
    )


def _severe(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _images(driver) -> tuple[int, list[str]]:
    """(number of images, sources of those that did not render)."""
    broken = driver.execute_script(
        "return Array.from(document.images).filter(i => !(i.naturalWidth > 0)).map(i => i.src)"
    )
    return driver.execute_script("return document.images.length"), broken


def test_pages_load_without_errors_and_images_render(browser, viewer_site, all_tasks_run, tmp_path):
    site, _, _ = viewer_site
    pages = [
        site / "index.html",
        site / "tasks" / "si_det3d" / "page-0001.html",
        site / "tasks" / "mi_det3d" / "page-0001.html",
        site / "tasks" / "video_count" / "page-0001.html",
        site / "tasks" / "video_count" / "page-0003.html",
        site / "failures.html",
    ]
    for page in pages:
        _open(browser, page)
        assert _severe(browser) == [], page
        n, broken = _images(browser)
        assert broken == [], page
        if page.name != "index.html":
            assert n >= 10, page  # index charts are inline SVG, not images
    _open(browser, site / "index.html")
    assert browser.execute_script("return document.querySelectorAll('svg.chart').length") >= 21
    _open(browser, site / "tasks" / "video_count" / "page-0001.html")
    strips = browser.execute_script(
        "return Array.from(document.querySelectorAll('.strip')).map(s => s.children.length)"
    )
    clips = [
        len(r["videos"][0])
        for shard in list_shards(all_tasks_run)
        for r in iter_rows(shard, ["task", "videos"])
        if r["task"] == "video_count"
    ]
    assert strips == clips[:10] and min(strips) > 1  # every frame, all rendered (see above)
    shot = tmp_path / "video_count.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_failures_view_filters(browser, viewer_site, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    site, _, hand = viewer_site
    _open(browser, site / "failures.html")

    def rows() -> list[dict]:
        return browser.execute_script(
            "return Array.from(document.querySelectorAll('#fail-table tbody tr')).map(r => "
            "({task: r.dataset.task, scene: r.dataset.scene, score: +r.dataset.score}))"
        )

    shown = rows()
    assert len(shown) == len(hand)
    assert [r["score"] for r in shown] == sorted(r["reward"]["overall"] for r in hand)
    assert shown[0]["score"] == 0.0  # failures first
    Select(browser.find_element(By.ID, "f-task")).select_by_value("si_det3d")
    assert [r["task"] for r in rows()] == ["si_det3d"] * 3
    assert browser.find_element(By.ID, "f-count").text == f"3 of {len(hand)} predictions"
    Select(browser.find_element(By.ID, "f-task")).select_by_value("")
    score = browser.find_element(By.ID, "f-max")
    score.clear()
    score.send_keys("0.5")
    assert sorted(r["score"] for r in rows()) == sorted(
        r["reward"]["overall"] for r in hand if r["reward"]["overall"] <= 0.5
    )
    scenes = sorted({r["scene"] for r in shown})
    Select(browser.find_element(By.ID, "f-scene")).select_by_value(scenes[-1])
    assert {r["scene"] for r in rows()} == {scenes[-1]}
    assert len(rows()) < len(hand)
    _, broken = _images(browser)
    assert broken == [] and _severe(browser) == []
    # a row's link opens the sample on its task page
    link = browser.find_element(By.CSS_SELECTOR, "#fail-table tbody tr a")
    sid = link.text
    link.click()
    assert browser.current_url.endswith(f"#{sid}")
    assert browser.find_element(By.ID, sid).is_displayed()
    shot = tmp_path / "failures.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
