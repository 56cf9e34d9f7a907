"""Text analytics: personal data redaction, sentiment, themes and distinguishing terms."""

from __future__ import annotations

import socket
import unicodedata
from pathlib import Path

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from connector.analytics.pii import redact_personal
from connector.analytics.sentiment import _analyser, label_of, sentiment
from connector.analytics.terms import comment_terms, distinguishing_terms, term_scores
from connector.analytics.text import guess_language, normalize_language
from connector.analytics.themes import DEFAULT_TAXONOMY, default_taxonomy, load_taxonomy, themes_of
from connector.errors import ConfigError
from connector.sandbox.respondents import COMMENTS

# --- personal data ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    # emails and links
    ("Mail me at anna.svensson@example.se.", "Mail me at [email]."),
    ("write to mailto:Per.Ek+it@sub.example.co.uk please", "write to [email] please"),
    ("see https://portal.example.com/ticket?id=1&token=abc. Then", "see [url]. Then"),
    ("www.example.com/u/anna was down", "[url] was down"),
    # phones, international and Swedish/European formats
    ("Call +46 70-123 45 67 please", "Call [phone] please"),
    ("ring 070-123 45 67", "ring [phone]"),
    ("ring 070 123 45 67 eller 08-123 456 78", "ring [phone] eller [phone]"),
    ("mobil 0701234567.", "mobil [phone]."),
    ("+46701234567", "[phone]"),
    ("+46 (0)70-123 45 67", "[phone]"),
    ("0046 70 123 45 67", "[phone]"),
    ("+44 20 7946 0958", "[phone]"),
    ("(555) 123-4567 or 555.123.4567 or +1 555 123 4567", "[phone] or [phone] or [phone]"),
    ("On 2024-01-15 call 070-123 45 67 after 14:30", "On 2024-01-15 call [phone] after 14:30"),
    # Swedish personal identity numbers (valid check digit)
    ("personnummer 19811218-9876 or 811218-9876", "personnummer [id] or [id]"),
    # not personal data: ticket numbers, dates, times, addresses, versions, amounts, ids
    ("INC0010023, ITSD-123, RITM0012345, KB0012345 and ITSD-1234567", None),
    ("on 2024-01-15 at 14:30, 15/01/2024, 15.01.2024 and 2024-01-15T14:30:00Z", None),
    ("between 2024-01-15 - 2024-01-20", None),
    ("server 192.168.10.25 runs version 3.10.5", None),
    ("the licence cost 1 200 000 kr", None),
    ("order 10023456 is late", None),
    ("Took 3 days, 2 calls and 45 minutes", None),
])
def test_redact_personal_data(text, expected):
    assert redact_personal(text) == (text if expected is None else expected)


@pytest.mark.parametrize(("text", "names", "expected"), [
    ("Åsa Öberg was great, thanks Åsa!", ["Åsa Öberg"], "[name] was great, thanks [name]!"),
    ("ÅSA ÖBERG called", ["Åsa Öberg"], "[name] called"),
    ("asa oberg called", ["Åsa Öberg"], "[name] called"),                 # typed without diacritics
    ("Åsas dator och Öberg's phone", ["Åsa Öberg"], "[name] dator och [name] phone"),  # possessives
    ("Öberg, Åsa", ["Åsa Öberg"], "[name], [name]"),
    ("Åsa K. Öberg", ["Åsa Öberg"], "[name]"),
    ("Thanks to Åsmund and the Oberglin team", ["Åsa Öberg"], None),     # whole words only
    ("Bo Ek helped; bo and ek alone are words", ["Bo Ek"], "[name] helped; bo and ek alone are words"),
    ("Anna-Karin O'Brien, Karin and O'Brien", ["Anna-Karin O'Brien"], "[name], [name] and [name]"),
    ("mail asa.oberg@example.se", ["Åsa Öberg"], "mail [email]"),
    ("no names given", [], None),
])
def test_redact_names(text, names, expected):
    assert redact_personal(text, names=names) == (text if expected is None else expected)


def test_redaction_sees_decomposed_letters_and_is_idempotent():
    decomposed = unicodedata.normalize("NFD", "Tack Åsa, ring 070-123 45 67")
    once = redact_personal(decomposed, names=["Åsa Öberg"])
    assert once == "Tack [name], ring [phone]"
    assert redact_personal(once, names=["Åsa Öberg"]) == once


# --- sentiment --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "label"), [
    ("Quick and friendly, thanks!", "positive"),
    ("Great service, very helpful!", "positive"),
    ("The agent was helpful and kind", "positive"),
    ("Terrible, nobody answered for a week.", "negative"),
    ("Worst experience ever", "negative"),
    ("Not helpful at all", "negative"),
    ("I don\u2019t like it", "negative"),       # curly apostrophe (see below)
    ("I reset my password.", "neutral"),
    ("The ticket was closed on Monday.", "neutral"),
])
def test_english_sentiment(text, label):
    result = sentiment(text, "en")
    assert result.scored and result.label == label and result.reason is None
    assert result.score is not None and -1 <= result.score <= 1


def test_curly_apostrophes_are_straightened_before_scoring():
    assert _analyser().polarity_scores("I don\u2019t like it")["compound"] > 0   # what VADER alone says
    assert sentiment("I don\u2019t like it", "en").label == "negative"


def test_nothing_is_downloaded(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("text analytics opened a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    fresh = SentimentIntensityAnalyzer()   # reads the lexicon that ships in the package
    assert fresh.polarity_scores("great")["compound"] > 0
    assert load_taxonomy(DEFAULT_TAXONOMY).themes


def test_labels_use_vaders_thresholds():
    assert [label_of(s) for s in (0.05, 0.0499, 0.0, -0.0499, -0.05)] == [
        "positive", "neutral", "neutral", "neutral", "negative"]


@pytest.mark.parametrize(("text", "language", "reason"), [
    ("Jag är inte glad, det var dåligt", "sv", "language sv not supported"),
    ("Bad idé att stänga ärendet", "sv-SE", "language sv not supported"),
    ("Das war nicht gut", "de", "language de not supported"),
    ("Snabbt och vänligt, tack!", None, "language sv not supported"),   # guessed Swedish
    ("Great!", None, "language unknown"),                                 # too short to tell
    ("Det var ikke løst og jeg er sur", None, "language unknown"),
    ("   ", "en", "empty comment"),
])
def test_comments_we_cannot_score_are_unscored(text, language, reason):
    result = sentiment(text, language)
    assert (result.scored, result.score, result.label, result.reason) == (False, None, None, reason)


def test_swedish_is_never_read_with_the_english_lexicon():
    # The trap is real: VADER alone finds English words ("glad", "bad") in these and scores them.
    for text in ("Jag är inte glad, det var dåligt", "Bad idé att stänga ärendet"):
        assert _analyser().polarity_scores(text)["compound"] != 0
        assert not sentiment(text, "sv").scored


def test_english_is_detected_when_the_response_has_no_language():
    result = sentiment("The agent was helpful and kind", None)
    assert result.scored and result.detected and result.language == "en" and result.label == "positive"
    assert sentiment("It was fine", "en-GB").language == "en"


@pytest.mark.parametrize(("code", "expected"), [
    ("sv-SE", "sv"), ("EN_gb", "en"), ("en", "en"), ("und", None), ("", None), (None, None), ("42", None),
])
def test_normalize_language(code, expected):
    assert normalize_language(code) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("It took three days and I had to chase you twice.", "en"),
    ("Det tog tre dagar och jag fick jaga er två gånger.", "sv"),
    ("Fortfarande inte löst.", "sv"),
    ("Great!", None),
    ("Das war nicht gut, und ich bin sauer", None),
    ("Det var ikke løst og jeg er sur", None),
])
def test_guess_language_is_conservative(text, expected):
    assert guess_language(text) == expected


# --- themes -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "language", "expected"), [
    # the demo's synthetic comments
    ("It took three days and I had to chase you twice.", "en", {"slow"}),
    ("Still not fixed, the VPN drops daily.", "en", {"not_fixed"}),
    ("I was passed between teams and nobody owned it.", "en", {"reassigned"}),
    ("Quick and friendly, thanks!", "en", {"fast", "friendly"}),
    ("Fixed on the first try.", "en", {"fixed"}),
    ("Det tog tre dagar och jag fick jaga er två gånger.", "sv", {"slow"}),
    ("Fortfarande inte löst.", "sv", {"not_fixed"}),
    ("Snabbt och vänligt, tack!", "sv-SE", {"fast", "friendly"}),
    ("Löst direkt.", "sv", {"fast", "fixed"}),
    # the survey's reason choices
    ("The fix was hard to follow", "en", {"hard_to_follow"}),
    ("Knowledgeable", "en", {"knowledgeable"}),
    ("Jag skickades mellan olika team", "sv", {"reassigned"}),
    ("Lösningen var svår att följa", "sv", {"hard_to_follow"}),
    ("Kunnigt", "sv", {"knowledgeable"}),
    # negation: "not fixed" is not "fixed"
    ("It was fixed", "en", {"fixed"}),
    ("It was not fixed", "en", {"not_fixed"}),
    ("It wasn't fixed", "en", {"not_fixed"}),
    ("Never fixed.", "en", {"not_fixed"}),
    ("Problemet är löst", "sv", {"fixed"}),
    ("Problemet är inte löst", "sv", {"not_fixed"}),
    ("Problemet löstes inte", "sv", {"not_fixed"}),          # Swedish puts the negation after the verb
    ("Not slow at all", "en", set()),
    ("Not fast, but friendly", "en", {"friendly"}),           # "but" ends the negation
    ("Inte långsamt utan snabbt", "sv", {"fast"}),
    ("The agent was not helpful", "en", {"unfriendly"}),
    # a topic theme is tagged whatever its polarity
    ("I was not kept informed", "en", {"communication"}),
    ("Kept me informed", "en", {"communication"}),
    ("Jag hölls inte informerad", "sv", {"communication"}),
    # word boundaries and look-alikes
    ("Some kind of error, fixed quickly", "en", {"fast", "fixed"}),
    ("Jag satt fast i telefonkön", "sv", {"slow"}),           # Swedish "fast" is "stuck"
    ("lätt irriterad", "sv", set()),
    ("Det var lätt att följa", "sv", {"easy"}),
    # language unknown or unsupported
    ("The agent was fast and helpful", None, {"fast", "friendly"}),
    ("Fast!", None, set()),
    ("Fast", "de", set()),
])
def test_themes(text, language, expected):
    assert themes_of(text, language) == frozenset(expected)


def test_every_demo_comment_gets_a_theme():
    for language, by_tone in COMMENTS.items():
        for texts in by_tone.values():
            assert all(themes_of(text, language) for text in texts), language


def test_default_taxonomy_covers_both_languages():
    taxonomy = default_taxonomy()
    ids = [t.id for t in taxonomy.themes]
    assert {"slow", "reassigned", "not_fixed", "communication", "friendly", "knowledgeable", "fast", "easy"} <= set(ids)
    for theme in taxonomy.themes:
        assert set(theme.matchers) == {"en", "sv"} and set(theme.labels) == {"en", "sv"}, theme.id
    assert taxonomy.theme("not_fixed").label("sv-SE") == "Inte löst / återkommande"
    assert taxonomy.theme("slow").label("fi") == "Slow / waiting"
    assert load_taxonomy() is taxonomy


CUSTOM = """\
negation:
  en: {words: [not, 'no'], before: 2}
themes:
  - id: vpn
    label: {en: VPN}
    keywords: {en: [vpn, remote access, tunnel*]}
  - id: laptop
    label: {en: Laptop, sv: Bärbar dator}
    patterns: {sv: ['bärbar(?:a)? dator(?:n|er)?']}
"""


def test_custom_taxonomy(tmp_path):
    path = tmp_path / "themes.yaml"
    path.write_text(CUSTOM, encoding="utf-8")
    taxonomy = load_taxonomy(path)
    assert themes_of("The VPN tunnels keep dropping", "en", taxonomy) == {"vpn"}
    assert themes_of("No VPN problems this time", "en", taxonomy) == set()
    assert themes_of("Min bärbara dator startar inte", "sv", taxonomy) == {"laptop"}
    assert taxonomy.languages == {"en", "sv"} and taxonomy.source == str(path)


BAD_TAXONOMIES = [
    ("colour: blue\nthemes: [{id: a, label: {en: A}, keywords: {en: [a]}}]\n", "bad.yaml:1: colour: unknown key"),
    ("themes:\n  - id: slow\n    label: {en: Slow}\n    keyword: {en: [slow]}\n",
     "bad.yaml:4: themes[0].keyword: unknown key"),
    ("themes:\n  - id: slow\n    label: {en: Slow}\n    patterns:\n      en: ['(unclosed']\n",
     "bad.yaml:5: themes[0].patterns.en[0]: invalid regular expression"),
    ("themes:\n  - id: slow\n    label: {en: Slow}\n    patterns: {en: ['a*']}\n",
     "themes[0].patterns.en[0]: matches empty text"),
    ("themes:\n  - id: ok\n    label: {en: OK}\n    keywords: {en: [ok]}\n  - id: empty\n    label: {en: Empty}\n",
     "bad.yaml:5: themes[1]: empty theme"),
    ("themes:\n  - id: a\n    label: {en: A}\n    keywords: {en: [a]}\n  - id: a\n    label: {en: B}\n"
     "    keywords: {en: [b]}\n", "themes[1].id: duplicate theme id 'a'"),
    ("themes:\n  - id: Slow Theme\n    label: {en: Slow}\n    keywords: {en: [slow]}\n", "themes[0].id: required"),
    ("themes:\n  - id: slow\n    label: {english: Slow}\n    keywords: {en: [slow]}\n",
     "themes[0].label.english: 'english' is not a language code"),
    ("negation:\n  en: {words: [not, no]}\nthemes: [{id: a, label: {en: A}, keywords: {en: [a]}}]\n",
     "negation.en.words: YAML reads a bare no"),
    ("negation:\n  en: {words: [not], before: many}\nthemes: [{id: a, label: {en: A}, keywords: {en: [a]}}]\n",
     "negation.en.before: must be a whole number"),
    ("themes: []\n", "bad.yaml:1: themes: a non-empty list of themes is required"),
    ("themes: [unclosed\n", "bad.yaml:2: invalid YAML"),
]


@pytest.mark.parametrize(("text", "message"), BAD_TAXONOMIES)
def test_taxonomy_errors_name_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_taxonomy(path)
    assert message in str(caught.value).replace(str(tmp_path / "bad.yaml"), "bad.yaml")


def test_taxonomy_reports_every_problem_at_once(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("themes:\n  - id: a\n    label: {en: A}\n    patterns: {en: ['(', '[']}\n    extra: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_taxonomy(path)
    assert [p.path for p in caught.value.problems] == ["themes[0].extra", "themes[0].patterns.en[0]",
                                                       "themes[0].patterns.en[1]"]


def test_the_example_in_the_docs_loads(tmp_path):
    docs = (Path(__file__).parents[2] / "docs" / "analytics.md").read_text(encoding="utf-8")
    example = docs.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "themes.yaml").write_text(example, encoding="utf-8")
    taxonomy = load_taxonomy(tmp_path / "themes.yaml")
    assert themes_of("I cannot connect from home", "en", taxonomy) == {"vpn"}
    assert themes_of("Jag kommer inte åt filerna hemifrån", "sv", taxonomy) == {"vpn"}
    assert themes_of("No VPN issues", "en", taxonomy) == set()


def test_shipped_taxonomy_is_in_the_package():
    assert (Path(__file__).parents[2] / "connector" / "analytics" / "themes.yaml").is_file()


# --- distinguishing terms ---------------------------------------------------------------------------------

DETRACTORS = [
    "The VPN is still not fixed", "VPN drops again, not fixed", "Slow, and the VPN still fails",
    "VPN broken after the password reset", "Password reset took days and the VPN is down",
    "Still not fixed, VPN down", "Needed a password reset twice", "Ticket closed but VPN not fixed, call [name]",
]
PROMOTERS = [
    "Quick and friendly service", "Friendly agent, fixed quickly", "Very friendly and knowledgeable",
    "Quick password reset, thanks", "Friendly and quick", "Password reset was easy, friendly staff",
    "Friendly help, thanks [name]", "Thanks, fixed it right away", "Password reset in minutes",
]


def test_distinguishing_terms_find_the_obvious_ones():
    found = distinguishing_terms(DETRACTORS, PROMOTERS, language="en", top=3)
    assert found.detractor[0].term == "vpn" and found.detractor[0].detractor_count == 7
    assert found.promoter[0].term == "friendly" and found.promoter[0].promoter_count == 6
    assert "not fixed" in [t.term for t in found.detractor]
    assert all(t.score > 0 for t in found.detractor) and all(t.score < 0 for t in found.promoter)
    assert len(found.detractor) <= 3 and len(found.promoter) <= 3


def test_a_term_said_alike_by_both_scores_near_zero():
    scores = {t.term: t for t in term_scores(DETRACTORS, PROMOTERS, language="en")}
    shared = scores["password reset"]
    assert (shared.detractor_count, shared.promoter_count) == (3, 3)
    assert abs(shared.score) < 0.2 < min(abs(scores["vpn"].score), abs(scores["friendly"].score)) / 5


def test_terms_drop_placeholders_stop_words_and_lone_negations():
    terms = comment_terms("Still not fixed, the VPN drops daily. Call [name] on [phone]!", "en")
    assert terms == {"still", "not fixed", "vpn", "vpn drops", "drops", "drops daily", "daily", "call"}
    assert comment_terms("Fortfarande inte löst, VPN:en kopplar ner", "sv-SE") == {
        "fortfarande", "inte löst", "vpn", "kopplar", "kopplar ner", "ner"}


def test_min_count_and_languages():
    assert all(t.detractor_count + t.promoter_count >= 3 for t in term_scores(DETRACTORS, PROMOTERS, language="en"))
    assert term_scores([], [], language="sv") == []
    assert term_scores(["vpn"] * 5, [], language="en") == []   # one term alone has nothing to compare with
    with pytest.raises(ValueError, match="no stop words for language 'de'"):
        distinguishing_terms(["x"], ["y"], language="de")
