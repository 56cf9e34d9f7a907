"""The survey page in a real browser (headless Chromium from Debian, driven by Selenium through the
system chromedriver): answering by mouse, by keyboard only, and with JavaScript switched off."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_survey_page import ASKED, SURVEYS, _page

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SHOTS = Path(os.environ.get("VLOOP_SCREENSHOTS", "/tmp/vloop-screenshots"))


def _browser(javascript: bool = True) -> object:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=420,900"):
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    return webdriver.Chrome(service=Service(CHROMEDRIVER or ""), options=options)


def _need_browser() -> None:
    if not (CHROMIUM and CHROMEDRIVER):
        if IN_CI:
            pytest.fail("Chromium and chromedriver are required in CI (make test installs them as root)")
        pytest.skip("chromium / chromedriver not installed")


@pytest.fixture
def page(sqlite_url, store_factory) -> Iterator[object]:
    _need_browser()
    yield from _page(sqlite_url, store_factory)


@pytest.fixture
def asked_page(sqlite_url, store_factory) -> Iterator[object]:
    """A page with a survey that has questions of its own (ASKED: channel, topics, call_back, idea)."""
    _need_browser()
    yield from _page(sqlite_url, store_factory, {**SURVEYS, "asked": ASKED})


@pytest.fixture
def browser() -> Iterator[object]:
    driver = _browser()
    yield driver
    driver.quit()


def _wait_for(driver, word: str) -> None:
    """The POST answers on the same URL: wait for the answer page instead of reading the old one."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 15).until(lambda d: word in d.page_source.lower())


def _stored(page, invitation_id: int) -> dict | None:
    from connector.store.surveys import SurveyStore

    return SurveyStore(page.store.engine).response(invitation_id)


def test_answer_with_the_mouse(page, browser):
    from selenium.webdriver.common.by import By

    invitation_id, token = page.invitation()
    browser.get(f"{page.url}/s/{token}?score=2")
    assert browser.find_element(By.CSS_SELECTOR, 'input[name="score"][value="2"]').is_selected()
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "survey-mouse.png"))
    browser.find_element(By.CSS_SELECTOR, 'label:has(input[name="score"][value="4"])').click()
    reasons = [e for e in browser.find_elements(By.CSS_SELECTOR, 'input[name="reason"]') if e.is_displayed()]
    assert reasons, "the reasons for a positive score are shown"
    reasons[0].click()
    browser.find_element(By.NAME, "comment").send_keys("Quick fix, thanks")
    browser.find_element(By.CSS_SELECTOR, 'button[type="submit"]').click()
    _wait_for(browser, "thank you!")
    stored = _stored(page, invitation_id)
    assert stored and stored["score"] == 4 and stored["comment"] == "Quick fix, thanks"
    assert stored["answers"]["reasons"]


def test_answer_with_the_keyboard_only(page, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    invitation_id, token = page.invitation()
    browser.get(f"{page.url}/s/{token}?score=3")
    keys = ActionChains(browser)
    # Tab into the page until the checked radio has focus, then move the choice with the arrow keys.
    for _ in range(10):
        keys.send_keys(Keys.TAB).perform()
        focused = browser.switch_to.active_element
        if focused.get_attribute("name") == "score":
            break
    assert browser.switch_to.active_element.get_attribute("name") == "score"
    keys.send_keys(Keys.ARROW_LEFT).perform()  # 3 -> 2
    assert browser.switch_to.active_element.get_attribute("value") == "2"
    for _ in range(20):  # on to the comment box
        keys.send_keys(Keys.TAB).perform()
        if browser.switch_to.active_element.get_attribute("name") == "comment":
            break
    keys.send_keys("Took too long").perform()
    keys.send_keys(Keys.TAB).perform()  # the submit button
    assert browser.switch_to.active_element.get_attribute("type") == "submit"
    keys.send_keys(Keys.ENTER).perform()
    _wait_for(browser, "thank you!")
    stored = _stored(page, invitation_id)
    assert stored and stored["score"] == 2 and stored["comment"] == "Took too long"


def test_answer_with_javascript_off(page):
    from selenium.webdriver.common.by import By

    invitation_id, token = page.invitation(language="sv")
    driver = _browser(javascript=False)
    try:
        driver.get(f"{page.url}/s/{token}?score=1")
        SHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SHOTS / "survey-nojs-sv.png"))
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "sv"
        visible = [e for e in driver.find_elements(By.CSS_SELECTOR, 'input[name="reason"]') if e.is_displayed()]
        assert len(visible) >= 10  # every group is offered without the script
        visible[0].click()
        driver.find_element(By.CSS_SELECTOR, 'button[type="submit"]').click()
        _wait_for(driver, "tack!")
    finally:
        driver.quit()
    stored = _stored(page, invitation_id)
    assert stored and stored["score"] == 1 and stored["answers"]["reasons"]


def test_answer_the_surveys_own_questions_with_the_keyboard(asked_page, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    page = asked_page
    invitation_id, token = page.invitation(survey="asked")
    browser.get(f"{page.url}/s/{token}?score=5")
    call_back = browser.find_element(By.ID, "q-call_back")
    assert not call_back.is_displayed(), "the call-back question is for dissatisfied and neutral scores only"
    keys = ActionChains(browser)

    def tab_to(name: str) -> None:
        for _ in range(30):
            keys.send_keys(Keys.TAB).perform()
            if browser.switch_to.active_element.get_attribute("name") == name:
                return
        raise AssertionError(f"never reached {name} with the Tab key")

    tab_to("score")
    keys.send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT, Keys.ARROW_LEFT).perform()  # 5 -> 2
    assert browser.switch_to.active_element.get_attribute("value") == "2"
    assert call_back.is_displayed()
    tab_to("q_channel")  # the first radio of a group with none checked takes the focus
    keys.send_keys(Keys.ARROW_DOWN).perform()  # portal -> phone, and selects it
    assert browser.switch_to.active_element.get_attribute("value") == "phone"
    tab_to("q_topics")
    keys.send_keys(Keys.SPACE).perform()  # access
    tab_to("q_call_back")
    keys.send_keys(Keys.SPACE).perform()  # yes
    tab_to("q_idea")
    keys.send_keys("Call me sooner").perform()
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "survey-questions.png"))
    tab_to("comment")
    keys.send_keys(Keys.TAB).perform()
    assert browser.switch_to.active_element.get_attribute("type") == "submit"
    keys.send_keys(Keys.ENTER).perform()
    _wait_for(browser, "thank you!")
    stored = _stored(page, invitation_id)
    assert stored and stored["score"] == 2
    assert stored["answers"] == {"reasons": [], "channel": "phone", "topics": ["access"], "call_back": True,
                                 "idea": "Call me sooner"}
