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


_HIDDEN_RE = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_PRE_RE = re.compile(
    r"<pre\b[^>]*>\s*(?:<code\b[^>]*>)?(.*?)(?:</code>\s*)?</pre>", re.DOTALL | re.IGNORECASE
)
_INLINE_CODE_RE = re.compile(r"<code\b[^>]*>(.*?)</code>", re.DOTALL | re.IGNORECASE)
_ITEM_RE = re.compile(r"<li\b[^>]*>", re.IGNORECASE)
_BREAK_RE = re.compile(r"<br\s*/?>|</?(?:p|div|ul|ol|blockquote|h[1-6])\b[^>]*>", re.IGNORECASE)
_BLANKS_RE = re.compile(r"\n\s*\n(\s*\n)+")
_FENCE = "\x00"  # marks a code block while the rest of the HTML is flattened


def readable_text(text: str) -> str:
    """Stack Overflow HTML as the plain text a person reads, in Markdown's conventions: paragraphs
    apart, code blocks fenced with their lines and indentation as written, inline code in
    backticks, list items as ``- ``, links as their text, entities unescaped, no tags (so nothing
    that a page showing it could run). What the model sees is :func:`clean_text`, not this."""
    if not isinstance(text, str):
        return ""
    blocks: list[str] = []

    def keep(match: re.Match[str]) -> str:
        code = html.unescape(match.group(1)).strip("\n")
        blocks.append("\n".join(line.rstrip() for line in code.splitlines()))
        return f"\n\n{_FENCE}{len(blocks) - 1}{_FENCE}\n\n"

    text = _PRE_RE.sub(keep, _HIDDEN_RE.sub("", text))
    text = _INLINE_CODE_RE.sub(lambda m: f"`{m.group(1)}`", text)
    text = _LINK_RE.sub(r"\1", text)
    text = _ITEM_RE.sub("\n- ", text)
    text = _BREAK_RE.sub("\n\n", text)
    text = html.unescape(_TAG_RE.sub("", text))
    lines = "\n".join(" ".join(line.split()) for line in text.splitlines())
    text = _BLANKS_RE.sub("\n\n", lines).strip()
    return re.sub(f"{_FENCE}(\\d+){_FENCE}", lambda m: f"```\n{blocks[int(m.group(1))]}\n```", text)


def title_of(question: str) -> str:
    """The title of a Stack Overflow question as written: its text before the body's first tag."""
    if not isinstance(question, str):
        return ""
    return " ".join(html.unescape(question.split("<", 1)[0]).split())
