"""Drives buzon's webmail in headless Chromium (Debian's chromium and chromium-driver, through
selenium): log in, read the inbox and a message, compose with an attachment, send, log out; at a
phone's width and a desktop's, with screenshots. Run by tests/test_web_browser.py under
/usr/bin/python3 (Debian's python3-selenium loads only there). Prints one JSON object."""

import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def browser(width, height):
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--window-size={width},{height}", "--no-first-run", "--disable-extensions"):
        o.add_argument(a)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.set_page_load_timeout(30)
    return d


def main():
    base, user, password, shots, attachment, to = sys.argv[1:7]
    out = {"sizes": {}, "steps": []}
    for label, (w, h) in (("phone", (390, 844)), ("desktop", (1280, 800))):
        d = browser(w, h)
        wait = WebDriverWait(d, 20)
        try:
            d.get(base + "/login")
            d.find_element(By.NAME, "user").send_keys(user)
            d.find_element(By.NAME, "password").send_keys(password)
            d.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
            wait.until(EC.url_contains("/folder"))
            out["steps"].append(f"{label}: logged in, at {d.current_url[len(base):]}")
            overflow = d.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
            out["sizes"][f"{label}_inbox_overflow"] = overflow
            d.save_screenshot(os.path.join(shots, f"{label}-inbox.png"))
            links = d.find_elements(By.CSS_SELECTOR, "a[href*='/msg?']")
            out["sizes"][f"{label}_message_links"] = len(links)
            links[0].click()
            wait.until(EC.url_contains("/msg?"))
            time.sleep(0.5)  # the frame's document loads after the page
            out["sizes"][f"{label}_message_overflow"] = d.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth")
            out["title_after_message"] = d.title
            frames = d.find_elements(By.TAG_NAME, "iframe")
            out["frames"] = [f.get_attribute("sandbox") for f in frames]
            d.save_screenshot(os.path.join(shots, f"{label}-message.png"))
            if label == "desktop":
                d.get(base + "/compose")
                d.find_element(By.NAME, "to").send_keys(to)
                d.find_element(By.NAME, "subject").send_keys("Sent from Chromium")
                d.find_element(By.NAME, "body").send_keys("Hello from a real browser.\nSecond line.")
                d.find_element(By.NAME, "attach").send_keys(attachment)
                d.save_screenshot(os.path.join(shots, f"{label}-compose.png"))
                d.find_element(By.CSS_SELECTOR, "button[name='action'][value='send']").click()
                wait.until(EC.url_contains("notice="))
                out["after_send"] = d.current_url[len(base):]
                out["notice"] = d.find_element(By.TAG_NAME, "body").text[:2000]
            else:
                d.get(base + "/compose")
                out["sizes"][f"{label}_compose_overflow"] = d.execute_script(
                    "return document.documentElement.scrollWidth - window.innerWidth")
                d.save_screenshot(os.path.join(shots, f"{label}-compose.png"))
            # Log out with the page's own button.
            d.get(base + "/folder?f=INBOX")
            d.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()
            wait.until(EC.url_contains("/login"))
            d.get(base + "/folder?f=INBOX")
            out["steps"].append(f"{label}: after logout /folder leads to {d.current_url[len(base):]}")
        finally:
            d.quit()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
