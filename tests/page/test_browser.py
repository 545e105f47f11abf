"""The on-call page in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium) against a real ``scalerd run``: a replayed target on
a recording actuator, with six hours of history decided by the real core before it.

Screenshots of the three pages, desktop and phone width, are taken here: into a temporary
folder, or where ``SCALERD_SCREENSHOTS`` says (the README's are made with
``SCALERD_SCREENSHOTS=docs/screenshots``), so a test run leaves the checkout as it was.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon.build import audit_records, running, write_config
from page_history import diurnal, make_history

from scalerd.audit import AuditRecord, parse_ts
from scalerd.config import load_config

pytestmark = pytest.mark.slow

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

BODY = """
[[sources]]
name = "demand"
kind = "replay"
values = [30, 60, 90, 40, 20, 80, 10, 50]
step = "2s"

[[sources]]
name = "queue"
kind = "replay"
values = [120, 300, 80, 20]
step = "3s"

[[actuators]]
name = "api-pool"
kind = "recording"
initial = 2

[[actuators]]
name = "worker-pool"
kind = "recording"
initial = 1

[[targets]]
name = "api"
actuator = "api-pool"
interval = "500ms"
max = 8
[[targets.track]]
metric = "demand"
type = "total"
target = 10
[targets.behavior.scale_down]
stabilization_window = "2s"

[[targets]]
name = "worker"
actuator = "worker-pool"
interval = "700ms"
max = 4
[[targets.threshold]]
when = "queue > 100 avg 2s"
action = "+1"
cooldown = "2s"
[[targets.threshold]]
when = "queue < 50 avg 2s"
action = "-1"
cooldown = "2s"
"""


def _driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            pytest.fail(
                f"{path} is missing: apt-get install chromium chromium-driver (.ci/run does)"
            )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def _until(condition: Any, timeout: float = 15.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not within {timeout}s")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = _driver()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``scalerd run`` on a config whose audit file already holds six hours of ``api``."""
    directory = tmp_path_factory.mktemp("page")
    config = write_config(directory, BODY)
    spec = next(t for t in load_config(config).targets if t.name == "api").spec
    history = make_history(
        spec,
        "demand",
        diurnal(70),
        end=datetime.now(UTC) - timedelta(seconds=5),
        count=6 * 240,
        interval=timedelta(seconds=15),
    )
    (directory / "audit").mkdir()
    (directory / "audit" / "audit.jsonl").write_text(
        "".join(record.to_json() + "\n" for record in history)
    )
    with running(config) as child:
        child.directory = directory
        try:
            _until(lambda: len(audit_records(directory)) > len(history) + 10)
        except AssertionError:
            raise AssertionError("".join(child.raw)[-3000:]) from None
        yield child


def _records(daemon: Any) -> list[AuditRecord]:
    return [AuditRecord.from_mapping(r) for r in audit_records(daemon.directory)]


def _open(browser: Any, url: str, width: int = 1280) -> None:
    browser.set_window_size(width, 900)
    browser.get(url)
    _until(lambda: browser.execute_script("return document.readyState") == "complete")


def _shoot(browser: Any, folder: Path, name: str, width: int) -> None:
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, min(int(height) + 20, 2400))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{'phone' if width < 600 else 'desktop'}.png"
    assert browser.save_screenshot(str(path)) and path.stat().st_size > 10_000


def _click(browser: Any, selector: str) -> None:
    """Click what ``selector`` finds, again if a live update replaced it meanwhile."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(5):
        try:
            browser.find_element("css selector", selector).click()
            return
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"{selector} kept being replaced")


def test_overview_lists_every_target_with_capacity_and_last_why(browser: Any, daemon: Any) -> None:
    _open(browser, daemon.url + "/")
    cards = {
        card.get_attribute("data-target"): card
        for card in browser.find_elements("css selector", "li.card")
    }
    assert set(cards) == {"api", "worker"}
    last = {record.target: record for record in _records(daemon)}
    for name, card in cards.items():
        capacity = card.find_element("css selector", ".capacity .numbers").text
        assert "provisioned /" in capacity and "ready" in capacity
        assert f"max {8 if name == 'api' else 4}" in capacity
        why = card.find_element("css selector", ".why-text").text
        # the why carries the rule's numbers: what was read, the arithmetic, the proposal
        assert "=" in why and any(ch.isdigit() for ch in why), why
        assert card.find_element("css selector", ".badge").text
        assert last[name].target == name
    assert "last 6h" in cards["api"].find_element("css selector", ".spark-row").text


def test_chart_marks_every_scaled_record_and_a_click_opens_its_decision(
    browser: Any, daemon: Any
) -> None:
    _open(browser, daemon.url + "/targets/api?window=6h")
    # one look at the page, so a live update in between cannot mix two versions of it
    start, newest, shown = browser.execute_script(
        "const main = document.querySelector('main');"
        "return [main.querySelector('figure.chart').dataset.start, main.dataset.newest,"
        " Array.from(main.querySelectorAll('svg a.mark'), mark => mark.dataset.id)]"
    )
    start = parse_ts(start)
    scaled = {
        r.id
        for r in _records(daemon)
        if r.target == "api" and r.action == "scaled" and r.ts >= start and r.id <= newest
    }
    assert len(scaled) > 20  # history and live both scaled
    assert set(shown) == scaled
    assert len(shown) == len(scaled)

    # a mark with no other mark near it, so the click lands on that one
    wanted = browser.execute_script(
        "const boxes = Array.from(document.querySelectorAll('svg a.mark'),"
        " mark => [mark.dataset.id, mark.getBoundingClientRect()]);"
        "const lonely = boxes.find(([id, box]) => boxes.every(([other, near]) => other === id"
        " || Math.abs(box.x - near.x) > 26 || Math.abs(box.y - near.y) > 26));"
        "return lonely && lonely[0]"
    )
    assert wanted
    _click(browser, f'svg a.mark[data-id="{wanted}"]')
    _until(lambda: browser.current_url.endswith(f"/decisions/{wanted}"))
    assert wanted in browser.find_element("css selector", ".provenance").text
    assert "Steps" in browser.find_element("css selector", "main").text


def test_a_new_decision_appears_without_a_reload(browser: Any, daemon: Any) -> None:
    _open(browser, daemon.url + "/targets/api?window=15m")
    browser.execute_script("window.scalerdNotReloaded = true")
    newest = "return document.querySelector('main').dataset.newest"
    shown = browser.execute_script(newest)
    _until(lambda: browser.execute_script(newest) > shown, timeout=12)
    assert browser.execute_script(
        "return document.querySelector('[data-id=\"' + arguments[0] + '\"]') !== null",
        browser.execute_script(newest),
    )
    assert browser.execute_script("return window.scalerdNotReloaded") is True


def test_three_pages_fit_a_phone_and_are_screenshotted(
    browser: Any, daemon: Any, tmp_path: Path
) -> None:
    folder = Path(os.environ.get("SCALERD_SCREENSHOTS") or tmp_path)
    scaled = [r for r in _records(daemon) if r.action == "scaled" and r.instance == "history"]
    pages = {
        "overview": "/",
        "target": "/targets/api?window=6h",
        "decision": f"/decisions/{scaled[-1].id}",
    }
    for name, path in pages.items():
        for width in (1280, 400):
            _open(browser, daemon.url + path, width)
            assert browser.execute_script("return window.innerWidth") == width
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, f"{name} scrolls sideways at {width}px by {overflow}px"
            _shoot(browser, folder, name, width)


def test_a_mark_is_reached_by_keyboard_and_opens_its_decision(browser: Any, daemon: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    _open(browser, daemon.url + "/targets/api?window=15m")
    for _ in range(40):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        focused = browser.switch_to.active_element
        if "mark" in (focused.get_attribute("class") or ""):
            break
    else:
        raise AssertionError("no chart mark is reachable with Tab")
    wanted = focused.get_attribute("data-id")
    # focus shows the decision beside the mark, as hovering does
    tip = browser.find_element("id", "mark-tip")
    assert tip.is_displayed() and "UTC" in tip.text
    assert tip.text == focused.get_attribute("aria-label")
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    _until(lambda: browser.current_url.endswith(f"/decisions/{wanted}"))


def test_with_redis_stopped_the_page_says_so_and_shows_no_error(
    browser: Any, redis_server: Any, tmp_path: Path
) -> None:
    if not redis_server.running:
        redis_server.start()
    header = f"""
    [redis]
    url = "{redis_server.url}"
    socket_timeout = "300ms"

    [audit]
    sink = "redis"
    stream = "page:audit"
    spool = "spool/audit.jsonl"
    """
    config = write_config(tmp_path, BODY, header=header)
    with running(config) as child:
        url = child.url
        # both targets have decided once (their cards link their last decision)
        _until(lambda: httpx.get(url + "/", timeout=5).text.count('<p class="why"><a ') == 2)
        _open(browser, url + "/")
        assert not browser.find_elements("css selector", ".notice")
        decision = browser.find_element("css selector", ".why a").get_attribute("href")
        redis_server.stop()
        try:
            # the open page learns it on its next poll, without a reload
            notice = _until(lambda: browser.find_elements("css selector", ".notice"), timeout=10)
            assert "audit stream is unreachable" in notice[0].text
            assert len(browser.find_elements("css selector", "li.card")) == 2
            for path in ("/", "/targets/api", "/targets/worker?window=1h", decision):
                answer = httpx.get(path if path.startswith("http") else url + path, timeout=5)
                assert answer.status_code == 200, (path, answer.text[:300])
                assert "audit stream is unreachable" in answer.text
        finally:
            redis_server.start()
