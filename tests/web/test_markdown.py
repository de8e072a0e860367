"""Markdown from models and admins becomes HTML with nothing that can run."""

import random
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pickwise.web import markdown
from pickwise.web.markdown import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    CACHED_TEXT_CHARS,
    CACHED_TEXTS,
    pygments_stylesheet,
    render_markdown,
)

ROOT = Path(__file__).resolve().parents[2]

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "<svg onload=alert(1)><circle r=10 /></svg>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<object data="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="></object>',
    '<embed src="javascript:alert(1)">',
    "<body onload=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<style>@import 'https://evil.example/x.css';</style>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<form action="javascript:alert(1)"><button>go</button></form>',
    '<details open ontoggle="alert(1)">',
    "<p onmouseover=alert(1)>hover</p>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click]( javascript:alert(1) )",
    "[click](<javascript:alert(1)>)",
    "[click](&#106;avascript:alert(1))",
    "[click](&#x6A;&#x61;&#x76;&#x61;script:alert(1))",
    "[click](javascript&colon;alert(1))",
    "[click](java\tscript:alert(1))",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](file:///etc/passwd)",
    "<javascript:alert(1)>",
    "<data:text/html,<script>alert(1)</script>>",
    "[ref][x]\n\n[x]: javascript:alert(1)",
    "![img](javascript:alert(1))",
    "![img](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    '![x" onerror="alert(1)](https://example.org/a.png)',
    '[t](https://example.org "a\\" onmouseover=\\"alert(1)")',
    '[t](https://example.org"onmouseover="alert(1))',
    '```"><script>alert(1)</script>\ncode\n```',
    "```html\n<script>alert(1)</script>\n```",
    "| a |\n|---|\n| <img src=x onerror=alert(1)> |",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
    "<!-- <script>alert(1)</script> -->",
    "<a href=https://example.org onclick=alert(1)>x</a>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "`<script>alert(1)</script>`",
]

SAFE_SCHEMES = ("http://", "https://", "mailto:")


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def parsed(html: str) -> list[tuple[str, dict[str, str | None]]]:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.elements


def assert_inert(html: str) -> None:
    """Only allowed tags and attributes; links only to http(s) or mailto URLs."""
    for tag, attributes in parsed(html):
        assert tag in ALLOWED_TAGS, (tag, html)
        for name, value in attributes.items():
            assert not name.startswith("on"), (tag, name, html)
            assert name in ALLOWED_ATTRIBUTES.get(tag, set()) | {"class", "rel", "target"}, (
                tag,
                name,
                html,
            )
            if name == "href":
                assert value is not None and value.lower().startswith(SAFE_SCHEMES), html
    # As text (&lt;script&gt;) these are harmless; as tags they must never appear.
    lowered = html.lower()
    for tag in ("<script", "<svg", "<math", "<iframe", "<img", "<style", "<object", "<form"):
        assert tag not in lowered, html


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_payload_renders_inert(payload: str) -> None:
    html = render_markdown(payload)

    assert_inert(html)
    for _, attributes in parsed(html):
        for value in attributes.values():
            assert "script" not in (value or "").lower()
            assert not (value or "").lower().startswith(("data:", "file:"))


def test_a_rendering_from_the_cache_is_as_inert_as_a_fresh_one() -> None:
    # The rating page renders the same texts again and again (a pair shown to k raters), so
    # renderings are kept per text: the second rendering of an attack comes from the cache.
    markdown._rendered.cache_clear()
    fresh = [render_markdown(payload) for payload in XSS_PAYLOADS]

    again = [render_markdown(payload) for payload in XSS_PAYLOADS]

    assert markdown._rendered.cache_info().hits == len(XSS_PAYLOADS)
    assert again == fresh
    for html in again:
        assert_inert(html)


def test_the_rendering_cache_is_bounded() -> None:
    markdown._rendered.cache_clear()
    for number in range(CACHED_TEXTS + 10):
        render_markdown(f"Answer number {number}.")
    assert markdown._rendered.cache_info().currsize == CACHED_TEXTS
    # A long text is rendered each time, never kept.
    long = "<script>alert(1)</script> " + "word " * (CACHED_TEXT_CHARS // 5)
    before = markdown._rendered.cache_info()
    html = render_markdown(long)
    assert markdown._rendered.cache_info() == before
    assert_inert(html)
    assert "&lt;script&gt;" in html


def test_raw_html_shows_as_text() -> None:
    html = render_markdown("Use <b>bold</b> and <script>x()</script>")

    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "&lt;script&gt;x()&lt;/script&gt;" in html


def test_links_get_safe_rel_and_relative_links_lose_their_target() -> None:
    html = render_markdown("[docs](https://example.org/docs) and [inside](/admin/users)")

    assert (
        '<a href="https://example.org/docs" target="_blank" rel="noopener noreferrer nofollow">'
        in html
    )
    assert "/admin/users" not in html


def test_images_are_links_never_loaded() -> None:
    html = render_markdown(
        "![a cat](https://example.org/cat.png) ![inline](data:image/png;base64,AAAA)"
    )

    assert "<img" not in html
    assert '<a href="https://example.org/cat.png"' in html and "Image: a cat</a>" in html
    assert "[Image: inline]" in html and "data:" not in html


def test_code_is_highlighted_with_classes_only() -> None:
    html = render_markdown("```python\ndef f():\n    return 1  # one\n```")

    assert html.startswith('<pre class="highlight"><code>')
    assert '<span class="k">def</span>' in html and '<span class="c1"># one</span>' in html
    assert "style=" not in html


def test_unknown_language_and_plain_blocks_are_escaped() -> None:
    html = render_markdown("```nosuchlanguage\n<b>x</b>\n```")

    assert "<pre><code>&lt;b&gt;x&lt;/b&gt;" in html


def test_tables_headings_and_lists() -> None:
    html = render_markdown("# Title\n\n| a | b |\n|:-:|--:|\n| 1 | 2 |\n\n3. three\n4. four")

    assert "<h3>Title</h3>" in html
    assert '<th class="align-center">a</th>' in html and '<td class="align-right">2</td>' in html
    assert '<ol start="3">' in html
    assert "style=" not in html


def test_empty_text() -> None:
    assert render_markdown("") == render_markdown(None) == ""


def test_pygments_stylesheet_file_is_current() -> None:
    stylesheet = (ROOT / "frontend/static/css/pygments.css").read_text()

    # Regenerate with: .venv/bin/python -c "from pickwise.web.markdown import
    # pygments_stylesheet as s; print(s(), end='')" > frontend/static/css/pygments.css
    assert stylesheet == pygments_stylesheet()


def test_the_html_rules_are_not_tried_at_all() -> None:
    # Raw HTML is off (it shows as text, above): its two rules, which would match nothing,
    # are not run at every block and every "<" either.
    rules = markdown._markdown.get_active_rules()
    assert "html_block" not in rules["block"] and "html_inline" not in rules["inline"]
    assert render_markdown("<div>\n\n*x*\n\n</div> a <b>b</b>").count("&lt;") == 4


# Pieces of texts for comparing the plain-prose path with markdown-it: words and prose
# punctuation, which that path takes, among everything that makes a text markdown (or may:
# the path refuses more than it must) and the attacks above.
_PROSE_PIECES = [
    "word", "Hello", "é", "naïve", "日本語", "—", "“quoted”", '"', "'", "(", ")", ".", ",", "?",
    "!", ":", ";", "/", "@", "$", "%", "^", "{", "}", "1", "42", "2024", "3.5", "#", "-", "+",
    "=", "https://example.org/a?b=c", "mailto:a@example.org", "www.example.org",
]  # fmt: skip
_MARKDOWN_PIECES = [
    "*", "**", "_", "__", "`", "```", "~", "~~~", "[", "]", "![", "](", "<", ">", "&", "&amp;",
    "&#35;", "&copy", "\\", "\\*", "|", "\t", "\r", "\r\n", "\x00", "\xa0", "\u2028", "\x1c",
    "\x0b", "\x0c", "  ", "    ",
]  # fmt: skip
_LINE_STARTS = [
    "", "", "", "", " ", "   ", "    ", "\t", "1. ", "1) ", "2019. ", "12)", "1.", "- ", "-",
    "+ ", "* ", "# ", "#", "## ", "> ", ">", "=", "===", "---", "***", "___", "| ", ":--", "```",
    "~~~", "<div>", "[x]: /u", "1", "10 ", "x",
]  # fmt: skip
_LINE_ENDS = ["", "", "", "", " ", "  ", "\\", "\t", "|", ":", "."]


def _generated_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        markdown_share = rng.choice([0.0, 0.0, 0.02, 0.1, 0.3])
        lines = []
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.2:
                lines.append("")  # a paragraph's end
                continue
            pieces = [
                rng.choice(_MARKDOWN_PIECES if rng.random() < markdown_share else _PROSE_PIECES)
                for _ in range(rng.randint(0, 12))
            ]
            line = rng.choice(["", " "]).join(pieces)
            if rng.random() < 0.3:
                line = rng.choice(_LINE_STARTS) + line
            if rng.random() < 0.2:
                line += rng.choice(_LINE_ENDS)
            lines.append(line)
        texts.append("\n".join(lines) + rng.choice(["", "", "\n", "\n\n", " "]))
    return texts


def test_plain_prose_is_rendered_as_markdown_it_renders_it() -> None:
    # Texts that are plain prose get their HTML without running markdown-it: the same HTML,
    # byte for byte, on texts full of what could make them markdown (the path refuses those).
    texts = [*XSS_PAYLOADS, *_generated_texts(10_000, seed=20)]
    texts += ["a\n\nb", "\n\na\n\n\n\nb\n\n", "a\nb\nc", "\n", "\n\n", "2024 was a year.\n1999"]

    plain = [text for text in texts if markdown._NOT_PLAIN_PROSE.search(text) is None]

    for text in texts:
        assert markdown._html(text) == markdown._markdown.render(text), repr(text)
    # Both paths are exercised, with much of each.
    assert len(plain) > 1000 and len(texts) - len(plain) > 5000
    assert sum("\n\n" in text.strip("\n") for text in plain) > 100


def test_plain_prose_is_not_run_through_markdown_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # A prompt or an answer without markdown (most prompts are such texts) is only split into
    # paragraphs and escaped: markdown-it's ~35-90 µs a text go to texts that need it.
    rendered: list[str] = []
    render = markdown._markdown.render

    def counted(text: str) -> str:
        rendered.append(text)
        return render(text)

    monkeypatch.setattr(markdown._markdown, "render", counted)
    markdown._rendered.cache_clear()
    prose = 'What is 2 + 2? Say "four" (or 4).\nThen stop.\n\nThanks: https://example.org'
    lists = "Two things:\n- one\n- two"

    html = render_markdown(prose)
    render_markdown(lists)

    assert html == (
        '<p>What is 2 + 2? Say "four" (or 4).\nThen stop.</p>\n<p>Thanks: https://example.org</p>\n'
    )
    assert rendered == [lists]
