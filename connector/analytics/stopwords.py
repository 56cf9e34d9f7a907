"""Stop words for distinguishing terms, per language.

Source: the Snowball stop word lists (https://snowballstem.org/algorithms/english/stop.txt and
.../swedish/stop.txt, BSD-3-Clause; NLTK's stopwords corpus ships the same lists), with two changes:

- negation words are kept as terms ("not", "no", "nor"; "inte", "ej", "icke", "ingen"), because
  "not fixed" and "inte löst" are exactly what tells detractors from promoters;
- a few very frequent English words the Snowball list leaves out only because they have rare
  homonyms ("can", "will", "us") are added, with "also", "just", "get", "got".

Kept as a module rather than a dependency: two short lists do not justify a package, and scikit-learn
(whose ENGLISH_STOP_WORDS would do for English) is not a dependency of vloop.
"""

from __future__ import annotations

ENGLISH = frozenset({
    "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "your", "yours", "yourself", "yourselves",
    "he", "him", "his", "himself", "she", "her", "hers", "herself", "it", "its", "itself", "they", "them", "their",
    "theirs", "themselves", "what", "which", "who", "whom", "this", "that", "these", "those", "am", "is", "are",
    "was", "were", "be", "been", "being", "have", "has", "had", "having", "do", "does", "did", "doing", "would",
    "should", "could", "ought", "i'm", "you're", "he's", "she's", "it's", "we're", "they're", "i've", "you've",
    "we've", "they've", "i'd", "you'd", "he'd", "she'd", "we'd", "they'd", "i'll", "you'll", "he'll", "she'll",
    "we'll", "they'll", "isn't", "aren't", "wasn't", "weren't", "hasn't", "haven't", "hadn't", "doesn't", "don't",
    "didn't", "won't", "wouldn't", "shan't", "shouldn't", "can't", "couldn't", "mustn't", "let's", "that's",
    "who's", "what's", "here's", "there's", "when's", "where's", "why's", "how's", "a", "an", "the", "and", "but",
    "if", "or", "because", "as", "until", "while", "of", "at", "by", "for", "with", "about", "against", "between",
    "into", "through", "during", "before", "after", "above", "below", "to", "from", "up", "down", "in", "out", "on",
    "off", "over", "under", "again", "further", "then", "once", "here", "there", "when", "where", "why", "how",
    "all", "any", "both", "each", "few", "more", "most", "other", "some", "such", "only", "own", "same", "so",
    "than", "too", "very",
    # added to Snowball's list (see above)
    "can", "will", "us", "also", "just", "get", "got",
})

SWEDISH = frozenset({
    "alla", "allt", "att", "av", "blev", "bli", "blir", "blivit", "de", "dem", "den", "denna", "deras", "dess",
    "dessa", "det", "detta", "dig", "din", "dina", "ditt", "du", "där", "då", "efter", "eller", "en", "er", "era",
    "ert", "ett", "från", "för", "ha", "hade", "han", "hans", "har", "henne", "hennes", "hon", "honom", "hur",
    "här", "i", "inom", "jag", "ju", "kan", "kunde", "man", "med", "mellan", "men", "mig", "min", "mina", "mitt", "mot",
    "mycket", "ni", "nu", "när", "någon", "något", "några", "och", "om", "oss", "på", "samma", "sedan", "sig",
    "sin", "sina", "sitta", "själv", "skulle", "som", "så", "sådan", "sådana", "sådant", "till", "under", "upp",
    "ut", "utan", "vad", "var", "vara", "varför", "varit", "varje", "vars", "vart", "vem", "vi", "vid", "vilka",
    "vilkas", "vilken", "vilket", "vår", "våra", "vårt", "än", "är", "åt", "över",
})

STOP_WORDS: dict[str, frozenset[str]] = {"en": ENGLISH, "sv": SWEDISH}
