"""Text cleaning for Stack Overflow HTML, shared by training, serving and the baselines.

Kept free of pandas and other heavy imports: the Python-backend preprocessing model imports
it inside the server (and the container installs only what the models import).
"""

from __future__ import annotations

import html
import re

_CODE_BLOCK_RE = re.compile(r"<pre\b[^>]*>\s*<code\b[^>]*>.*?</code>\s*</pre>", re.DOTALL | re.IGNORECASE)
_LINK_RE = re.compile(r"<a\b[^>]*>(.*?)</a>", re.DOTALL | re.IGNORECASE)
# Inline tags vanish without a space ("<code>x</code>." -> "x."); any other tag (p, br, li, ...)
# separates words.
_INLINE_TAG_RE = re.compile(
    r"</?(?:a|abbr|b|code|del|em|i|ins|kbd|s|small|span|strike|strong|sub|sup|tt|u)\b[^>]*>",
    re.IGNORECASE,
)
_TAG_RE = re.compile(r"<[^>]*>")
_WS_RE = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """Normalise Stack Overflow HTML into the plain text the models see.

    Code blocks are dropped (they are noise for matching wording and differ per user), links
    become their visible text, remaining tags are stripped, entities are unescaped *after*
    stripping (so ``&lt;div&gt;`` written by a user stays as the text ``<div>``), and the result
    is lower-cased with whitespace collapsed. Inline ``<code>`` keeps its text because names like
    ``splice`` carry the meaning of a question. Non-strings (NaN from pandas) clean to ``""``.
    """
    if not isinstance(text, str):
        return ""
    text = _CODE_BLOCK_RE.sub(" ", text)
    text = _LINK_RE.sub(r"\1", text)
    text = _INLINE_TAG_RE.sub("", text)
    text = _TAG_RE.sub(" ", text)
    text = html.unescape(text)
    return _WS_RE.sub(" ", text.lower()).strip()
