"""The language of a callback request: asked for in the API (checked against the flows), kept
with the request, answered in; the consent wording and status texts in it; the widget's
strings endpoint and the hosted page's ?lang; a callback asked for on the phone keeps the
call's language."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from sqlalchemy import select

from callback.consent import Consent
from callback.models import CallbackRequest
from callback.settings import DEFAULTS
from ivr.core.i18n import catalog
from ivr.core.i18n.languages import foreign_letters
from tests.callback.conftest import CUSTOMER, ask
from tests.callback.languages_support import speak_indian_languages
from tests.conftest import AUTH_TOKEN, BASE_URL
from tests.support.caller import SimulatedCall, flask_transport

WEB_LANGUAGES = ("en", "hi", "bn", "ta", "ko")


@pytest.fixture
def app_config(app_config: dict, flows_path: Path) -> dict:
    speak_indian_languages(flows_path)
    return app_config


def _row(deps) -> CallbackRequest:
    with deps.db.session() as s:
        return s.scalar(select(CallbackRequest))


def _strings(lang: str) -> dict[str, str]:
    return catalog.catalogue("web")[lang]


def _edit_flows(app, flows_path: Path, edit) -> None:
    """Change the flows file and have the app read it now (it reloads in the background)."""
    from ivr.infra.services import services_of

    data = yaml.safe_load(flows_path.read_text())
    edit(data)
    flows_path.write_text(yaml.safe_dump(data, allow_unicode=True))
    services_of(app).flows.reload()


def test_the_language_is_stored_returned_and_answered_in(client, deps):
    info = client.get("/callbacks/info?lang=bn").get_json()
    assert info["language"] == "bn"
    assert info["consent_text"] == _strings("bn")["web.consent"]
    made = client.post("/callbacks", json={
        "consent": True, "phone": CUSTOMER, "language": "bn",
        "consent_version": info["consent_version"]})
    assert made.status_code == 202, made.get_json()
    assert made.get_json()["message"] == "ধন্যবাদ: আমরা এই নম্বরে ফিরতি ফোন করব।"
    shown = client.get(f"/callbacks/{made.get_json()['id']}",
                       headers={"X-Callback-Token": made.get_json()["token"]}).get_json()
    assert shown["language"] == "bn"
    row = _row(deps)
    assert row.language == "bn"
    # What the visitor read and agreed to is what is kept: the Bengali wording.
    assert (row.consent_text, row.consent_version) == (
        info["consent_text"], Consent.of(_strings("bn")["web.consent"]).version)


def test_without_a_language_the_flows_default_is_used(callback_app, client, deps, flows_path):
    assert ask(client, {"phone": CUSTOMER})["language"] == "en"
    assert _row(deps).language == "en"
    # The default is the flows', not a fixed English.
    def korean_by_default(d: dict) -> None:
        d["defaults"]["language"] = "ko"
        d["flows"]["main"]["language"] = "en"  # its English prompts stay heard in English

    _edit_flows(callback_app, flows_path, korean_by_default)
    assert ask(client, {"phone": "+14155550124"})["language"] == "ko"


@pytest.mark.parametrize("sent, stored", [("hi", "hi"), ("BN", "bn"), ("ta-IN", "ta"),
                                          ("ko", "ko")])
def test_language_codes_are_read_like_flow_codes(client, deps, sent, stored):
    assert ask(client, {"phone": CUSTOMER, "language": sent})["language"] == stored


def test_an_unknown_language_is_refused_with_the_codes_there_are(client, deps):
    resp = client.post("/callbacks", json={"consent": True, "phone": CUSTOMER,
                                           "language": "fr"})
    assert resp.status_code == 400
    assert resp.get_json() == {
        "error": "invalid_request",
        "message": "Unknown language 'fr': a callback can be placed in bn, en, hi, ko, ta (the "
                   "languages of flows.yaml). Send one of these codes, or leave 'language' out "
                   "for en."}
    assert _row(deps) is None


@pytest.mark.parametrize("value, message", [
    (7, "'language' must be text."),
    ("x" * 17, "'language' is too long: at most 16 characters."),
])
def test_a_language_that_is_not_a_code_is_refused(client, deps, value, message):
    resp = client.post("/callbacks", json={"consent": True, "phone": CUSTOMER,
                                           "language": value})
    assert (resp.status_code, resp.get_json()["message"]) == (400, message)
    assert _row(deps) is None


def test_consent_wording_of_another_language_is_refused(client, deps):
    """A page that showed the English wording cannot post a Bengali request with it."""
    english = client.get("/callbacks/info").get_json()["consent_version"]
    resp = client.post("/callbacks", json={"consent": True, "phone": CUSTOMER, "language": "bn",
                                           "consent_version": english})
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "consent_required"


def test_a_shops_own_consent_wording_is_shown_in_every_language(callback_app, client, flows_path):
    callback_app.config["CALLBACK_CONSENT_TEXT"] = "We may call you once about this."
    assert client.get("/callbacks/info?lang=hi").get_json()["consent_text"] == \
        "We may call you once about this."
    # ... unless the flows give it in that language.
    _edit_flows(callback_app, flows_path, lambda d: d["defaults"].update(
        phrases={"hi": {"web.consent": "हम इस बारे में आपको एक बार कॉल करेंगे।"}}))
    assert client.get("/callbacks/info?lang=hi").get_json()["consent_text"] == \
        "हम इस बारे में आपको एक बार कॉल करेंगे।"


def test_the_problem_is_told_in_the_requests_language(client, callback_app, deps, agent):
    from rq import SimpleWorker

    from callback.dispatch import dispatch_once
    from callback.settings import RQ_QUEUE

    made = client.post("/callbacks", json={"consent": True, "phone": CUSTOMER,
                                           "language": "bn"}).get_json()
    callback_app.config["CALLBACK_CALLING_WINDOW"] = "whenever"  # every dial job now raises
    assert dispatch_once(deps) == [1]
    SimpleWorker([RQ_QUEUE], connection=deps.redis).work(burst=True)
    state = client.get(f"/callbacks/{made['id']}",
                       headers={"X-Callback-Token": made["token"]}).get_json()
    # A figure, not the words a voice needs, in the digits CLDR gives Bengali in India.
    assert state["problem"] == ("এই কলটি করতে আমাদের দিক থেকে 1 বার সমস্যা হয়েছে; আমরা চেষ্টা "
                                "চালিয়ে যাচ্ছি।")


@pytest.mark.parametrize("lang", WEB_LANGUAGES)
def test_every_web_sentence_exists_with_the_same_placeholders(lang):
    english = _strings("en")
    table = _strings(lang)
    assert list(table) == list(english)
    for key, text in table.items():
        assert catalog.fields(text) == catalog.fields(english[key]), (lang, key)


@pytest.mark.parametrize("lang", ("hi", "bn", "ta", "ko"))
def test_every_web_sentence_is_written_in_the_languages_script(lang):
    for key, text in _strings(lang).items():
        bare = re.sub(r"\{\w+\}", "", text)
        assert foreign_letters(lang, bare) == "", (lang, key, text)


def test_the_english_consent_sentence_is_the_default_setting():
    """The stored consent version of English requests stays what it was before catalogues."""
    assert _strings("en")["web.consent"] == DEFAULTS["CALLBACK_CONSENT_TEXT"]


def test_the_widget_strings_endpoint(client):
    resp = client.get("/callbacks/strings/ta")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "public, max-age=300"
    body = resp.get_json()
    assert (body["language"], body["locale"], body["numbers"], body["day_periods"],
            body["zone"]) == ("ta", "ta-IN", "latn", True, "long")
    assert body["strings"] == _strings("ta")
    # English keeps its AM/PM and short zone names ("EDT"); an unknown language gets the
    # default's words, not an error.
    english = client.get("/callbacks/strings/zz").get_json()
    assert (english["language"], english["locale"], english["day_periods"], english["zone"]) == (
        "en", "en-US", False, "short")
    assert client.get("/callbacks/strings").get_json()["language"] == "en"


def _visible_text(html: str) -> str:
    """The words a reader sees: no tags, scripts, styles or the page's embedded strings."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r"<!--.*?-->", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


@pytest.mark.parametrize("lang", ("bn", "ta", "hi"))
def test_the_hosted_page_speaks_the_language_it_is_asked_for(client, lang):
    html = client.get(f"/callback?lang={lang}").get_data(as_text=True)
    assert f'<html lang="{lang}">' in html
    assert f'data-ivr-lang="{lang}"' in html
    title = re.search(r"<title>(.*?)</title>", html).group(1)
    assert title == _strings(lang)["web.page_title"].format(phone="(800) 555-0100")
    assert foreign_letters(lang, _visible_text(html)) == ""
    assert _strings(lang)["web.heading"] in html


def test_an_unknown_page_language_falls_back_to_the_default(client):
    resp = client.get("/callback?lang=zz")
    assert resp.status_code == 200
    assert '<html lang="en">' in resp.get_data(as_text=True)


def test_a_closed_page_gives_the_opening_time_in_the_languages_words(callback_app, client, clock,
                                                                    flows_path):
    """Without scripts the page says when we open, formatted by Babel in the team's zone."""
    _edit_flows(callback_app, flows_path, lambda d: d["queues"]["support"].update(hours="shop"))
    clock.at = dt.datetime(2026, 3, 15, 16, 0, tzinfo=dt.UTC)  # Sunday: closed until Monday 9:00
    html = client.get("/callback?lang=bn").get_data(as_text=True)
    line = re.search(r'<p class="ivr-cb-wait">(.*?)</p>', html).group(1)
    assert line == ("এখন আমরা বন্ধ। আমরা আবার খুলব সোমবার, 16 মার্চ 9:00 সকাল পূর্বাঞ্চলের "
                    "দিবালোক সময়: কলব্যাকের অনুরোধ করুন, তখন আমরা আপনাকে ফোন করব।")
    english = client.get("/callback").get_data(as_text=True)
    assert "We open again Monday, March 16, 9:00 AM EDT:" in english


# --- from the phone -------------------------------------------------------------------------

SHIPPED = Path(__file__).resolve().parents[2] / "flows.yaml"


@pytest.fixture
def shipped_flows(app_config: dict, tmp_path: Path) -> dict:
    """The shipped flows.yaml (its first menu chooses the language)."""
    target = tmp_path / "shipped.yaml"
    shutil.copy(SHIPPED, target)
    return {**app_config, "IVR_FLOWS": str(target)}


def test_a_callback_asked_for_on_the_phone_keeps_the_calls_language(shipped_flows):
    from ivr import create_app
    from ivr.core.flows.loader import load_flows
    from ivr.infra.services import services_of

    flows = load_flows(Path(shipped_flows["IVR_FLOWS"])).file
    first = flows.flows[flows.flow_for_number("+18005550100")]
    choice = first.nodes[first.start]
    bengali = next(o.digit for o in choice.options if o.set.get("language") == "bn")
    app = create_app(shipped_flows)
    try:
        call = SimulatedCall(flask_transport(app.test_client(), BASE_URL), BASE_URL,
                             AUTH_TOKEN, called="+18005550100", caller=CUSTOMER)
        call.dial()
        call.press(bengali)
        offer = call.press("0")  # nobody is staffed: the escape offers a callback
        assert parse_qs(urlsplit(offer.gather_action).query)["node"] == ["@callback"]
        call.press("1")  # yes, call me back on this number
        with services_of(app).db.session() as s:
            row = s.scalar(select(CallbackRequest))
        assert (row.source, row.phone, row.language) == ("phone", CUSTOMER, "bn")
    finally:
        services_of(app).db.dispose()
