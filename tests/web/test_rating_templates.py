"""What the rating pages' templates cost a page: the layout (`rate/_layout.html`) hands its
page up the `extends` chain in one piece (every piece a page yields would otherwise be passed
on by each level: the pair page, the layout, base.html, some 250 pieces a pair page), and the
pair page's parts that are the same for every pair of a project are rendered once
(`web.rating._pair_part`)."""

from types import SimpleNamespace

from jinja2 import ChoiceLoader, DictLoader
from starlette.requests import Request

from pickwise.app import create_app
from pickwise.models import Project
from pickwise.vocabulary import FlagReason, SkipReason
from pickwise.web import rating
from pickwise.web.templating import templates

ITEMS = 200
CHILD = (
    '{% extends "rate/_layout.html" %}'
    "{% block rate_content %}{% for n in range(items) %}<p>item {{ n }}</p>{% endfor %}"
    "{% endblock %}"
)


def test_a_rating_page_reaches_base_html_in_one_piece() -> None:
    environment = templates.env.overlay(
        loader=ChoiceLoader([DictLoader({"rate/_child.html": CHILD}), templates.env.loader])
    )
    request = Request({"type": "http", "app": create_app(), "headers": [], "path": "/rate/3"})
    context = {
        "request": request,
        "project": SimpleNamespace(id=3, name="A project"),
        "principal": None,
        "progress": SimpleNamespace(today=1, total=2, needed=3),
        "items": ITEMS,
    }
    pieces = list(environment.get_template("rate/_child.html").generate(context))

    page = "".join(pieces)
    assert all(f"<p>item {n}</p>" in page for n in range(ITEMS))
    assert '<a href="/rate/3" aria-current="page">Rate</a>' in page
    # base.html's own pieces around one for the whole rating content (ITEMS * 3 without it).
    assert len(pieces) < 40


def _project(**settings: object) -> Project:
    defaults: dict[str, object] = {
        "id": 3,
        "name": "A project",
        "strength_scale": ["slightly", "clearly"],
        "allow_tie": True,
        "allow_both_bad": True,
        "criteria": [],
        "rationale_mode": "optional",
        "undo_seconds": 300,
    }
    return Project(**{**defaults, **settings})


def test_the_pair_page_s_fixed_parts_are_rendered_once_per_settings() -> None:
    rating._pair_part.cache_clear()
    project, values = _project(), rating.FormValues()

    first = rating._pair_parts(project, values, editing=False)
    again = rating._pair_parts(project, values, editing=False)

    assert again == first
    assert rating._pair_part.cache_info().misses == 4  # strength, skip, flag, shortcuts
    assert rating._pair_part.cache_info().hits == 4
    assert 'data-label="clearly"' in first["strength_options"]
    assert "<kbd>3</kbd></dt><dd>Tie" in first["shortcut_list"]
    assert "Flag it for an admin" in first["shortcut_list"]
    assert first["flag_reasons"].count('name="reason"') == len(FlagReason)

    # Another project's settings, the rater's entries and a change page are parts of their own.
    no_tie = rating._pair_parts(_project(allow_tie=False), values, editing=False)
    assert "<kbd>3</kbd></dt><dd>Tie" not in no_tie["shortcut_list"]
    chosen = rating.FormValues(strength="1", skip_reason=SkipReason.BROKEN_CONTENT)
    entered = rating._pair_parts(project, chosen, editing=True)
    assert entered["strength_options"].count("checked") == 1
    assert 'value="1" data-label="clearly"\n          checked>' in entered["strength_options"]
    assert 'value="broken_content" required\n          checked>' in entered["skip_reasons"]
    assert "Flag it for an admin" not in entered["shortcut_list"]


def test_an_edited_parts_template_renders_anew_and_the_parts_kept_are_bounded() -> None:
    rating._pair_part.cache_clear()
    parts = templates.env.get_template(rating.PAIR_PARTS)
    edited = templates.env.from_string(
        "{% macro flag_reasons() %}<p>edited</p>{% endmacro %}", template_class=type(parts)
    )

    assert "harmful" in rating._pair_part(parts, "flag_reasons")
    assert rating._pair_part(edited, "flag_reasons") == "<p>edited</p>"
    assert rating._pair_part.cache_info().maxsize == rating.KEPT_PARTS
    for n in range(rating.KEPT_PARTS + 10):  # a rater's own text as the strength, each new
        rating._pair_part(parts, "strength_options", ("a", "b"), f"x{n}")
    assert rating._pair_part.cache_info().currsize == rating.KEPT_PARTS
