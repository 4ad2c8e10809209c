"""The Scrubber: every occurrence of any secret in a text replaced by MASK, whether it is there as typed,
encoded as config.secrets.encoded_forms gives it, or percent-encoded. Settings.scrubber builds the one
every entry point uses."""

from __future__ import annotations

import re
from collections.abc import Iterable
from operator import itemgetter
from typing import Final
from urllib.parse import unquote, unquote_plus

from config.secrets import MASK, MIN_SECRET_LENGTH, encoded_forms

WINDOW: Final = MIN_SECRET_LENGTH
"""Characters of a form that the index files it under; every form is at least this long."""
CROWDED: Final = 8
"""Forms sharing one window beyond which they are filed under rarer windows of their own."""
PERCENT_LAYERS: Final = 2
"""Percent-encodings looked through, one inside the other (a URL quoted into a query quoted again)."""

# A run of text that quote(), quote_plus() or a URL library may have produced: unreserved characters, "/"
# (which quote() keeps), "+" (a space, to quote_plus), ":" and "@" (which yarl keeps in paths and queries)
# and escapes, at least one of them.
_PERCENT_RUN: Final = re.compile(r"[A-Za-z0-9._~+/:@-]*%[0-9A-Fa-f]{2}[A-Za-z0-9._~%+/:@-]*")
_last_window: Final = itemgetter(slice(-WINDOW, None))

# window -> the one form ending in it, or the forms filed under it with the window's offset in each
Index = dict[str, str | list[tuple[str, int]]]
Span = tuple[int, int]


class Scrubber:
    """Replaces every occurrence of a secret with MASK: each of `credentials` in each of its encoded_forms,
    each of `url_parts` as typed, and either inside a percent-encoded run of the text (the whole run is
    masked then). Secrets shorter than MIN_SECRET_LENGTH are ignored; overlapping occurrences are masked
    as one.

    Each form is filed under one window of WINDOW characters: its last, unless many forms end alike
    (paths ending in "/webhook"), which are then spread over windows of their own. A scrub looks up each
    window of the text and compares only the forms filed there. So building is linear in the number of
    forms and a scrub costs about the same with ten secrets or tens of thousands, where a regex
    alternation of them all (what this replaces) took ever longer to compile as targets were added.
    Percent-encoded forms are found by decoding the text's encoded runs instead of being filed: three
    more forms per secret would triple the index, for texts that rarely hold an escape at all."""

    __slots__ = ("_index",)

    def __init__(self, credentials: Iterable[str] = (), *, url_parts: Iterable[str] = ()) -> None:
        forms = {part for part in url_parts if len(part) >= MIN_SECRET_LENGTH}
        for credential in credentials:
            if len(credential) >= MIN_SECRET_LENGTH:
                forms.update(encoded_forms(credential))
        self._index = _file(list(forms))

    def __call__(self, text: str) -> str:
        if not self._index or len(text) < WINDOW:
            return text
        spans = self._spans(text)
        if "%" in text:
            spans += self._percent_encoded_spans(text, PERCENT_LAYERS)
        return _masked(text, spans) if spans else text

    def __len__(self) -> int:
        """How many forms of secrets are looked for."""
        return sum(1 if isinstance(filed, str) else len(filed) for filed in self._index.values())

    def _spans(self, text: str) -> list[Span]:
        """Where the filed forms occur in `text`."""
        index = self._index
        spans: list[Span] = []
        for position in [i for i in range(len(text) - WINDOW + 1) if text[i : i + WINDOW] in index]:
            end = position + WINDOW
            filed = index[text[position:end]]
            if isinstance(filed, str):
                start = end - len(filed)
                if start >= 0 and text.startswith(filed, start):
                    spans.append((start, end))
                continue
            for form, offset in filed:
                start = position - offset
                if start >= 0 and text.startswith(form, start):
                    spans.append((start, start + len(form)))
        return spans

    def _percent_encoded_spans(self, text: str, layers: int) -> list[Span]:
        """The percent-encoded runs of `text` that decode to a text holding a secret."""
        spans: list[Span] = []
        for run in _PERCENT_RUN.finditer(text):
            encoded = run[0]
            for decoded in {unquote(encoded), unquote_plus(encoded)} if "+" in encoded else (unquote(encoded),):
                if self._spans(decoded) or (
                    layers > 1 and "%" in decoded and self._percent_encoded_spans(decoded, layers - 1)
                ):
                    spans.append(run.span())
                    break
        return spans


def _file(forms: list[str]) -> Index:
    """The index of `forms`. Most end in a window of their own: those are filed in one pass of C-level
    calls, the rest one by one."""
    index: Index = dict(zip(map(_last_window, forms), forms, strict=True))
    if len(index) == len(forms):
        return index
    shared: dict[str, list[tuple[str, int]]] = {}
    for form in set(forms).difference(index.values()):  # those a later form ending alike displaced
        window = form[-WINDOW:]
        if window not in shared:
            first = index[window]  # a single form: nothing else is filed yet
            shared[window] = [(first, len(first) - WINDOW)] if isinstance(first, str) else first
        shared[window].append((form, len(form) - WINDOW))
    # A crowded window would make every text holding it compare all of its forms.
    crowded = {window for window, filed in shared.items() if len(filed) > CROWDED}
    index.update((window, filed) for window, filed in shared.items() if window not in crowded)
    for window in crowded:
        del index[window]
        for form, _ in shared[window]:
            _file_apart(form, index, crowded)
    return index


def _file_apart(form: str, index: Index, crowded: set[str]) -> None:
    """File `form` under its window with the fewest forms: the first unused one, looking from the end,
    where tokens usually are."""
    best, fewest = len(form) - WINDOW, -1
    for offset in range(len(form) - WINDOW, -1, -1):
        window = form[offset : offset + WINDOW]
        if window in crowded:
            continue
        filed = index.get(window)
        count = 0 if filed is None else 1 if isinstance(filed, str) else len(filed)
        if count == 0:
            best = offset
            break
        if fewest < 0 or count < fewest:
            best, fewest = offset, count
    window = form[best : best + WINDOW]
    filed = index.get(window)
    if filed is None:
        index[window] = [(form, best)]
    elif isinstance(filed, str):
        index[window] = [(filed, len(filed) - WINDOW), (form, best)]
    else:
        filed.append((form, best))


def _masked(text: str, spans: list[Span]) -> str:
    """`text` with the union of `spans` replaced, each run of overlapping or touching spans by one MASK."""
    spans.sort()
    pieces: list[str] = []
    kept_from = 0
    run_start, run_end = spans[0]
    for start, end in spans[1:]:
        if start <= run_end:
            run_end = max(run_end, end)
            continue
        pieces += [text[kept_from:run_start], MASK]
        kept_from, run_start, run_end = run_end, start, end
    pieces += [text[kept_from:run_start], MASK, text[run_end:]]
    return "".join(pieces)
