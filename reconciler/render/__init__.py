"""Plan renderers, chosen by name: `text` for a terminal, `json` for scripts, `markdown` for
pull-request comments. Each is a function `(plan, options) -> str`; none prints."""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.plan import Plan
from reconciler.render.common import Renderer, RenderOptions
from reconciler.render.json import render_json
from reconciler.render.markdown import render_markdown
from reconciler.render.text import render_text, text_chunks

RENDERER_BY_NAME: dict[str, Renderer] = {
    "text": render_text,
    "json": render_json,
    "markdown": render_markdown,
}

__all__ = ["RENDERER_BY_NAME", "RenderOptions", "Renderer", "render", "render_chunks"]


def render(plan: Plan, fmt: str, options: RenderOptions) -> str:
    """`plan` in the format named `fmt` (a key of RENDERER_BY_NAME)."""
    return "".join(render_chunks(plan, fmt, options))


def render_chunks(plan: Plan, fmt: str, options: RenderOptions) -> Iterator[str]:
    """`plan` in the format named `fmt`, in pieces to write one after another: text comes a
    lead at a time, so a large plan is never held as one string."""
    if fmt == "text":
        return text_chunks(plan, options)
    try:
        renderer = RENDERER_BY_NAME[fmt]
    except KeyError:
        known = ", ".join(RENDERER_BY_NAME)
        raise ValueError(f"unknown plan format {fmt!r}; use one of {known}") from None
    return iter((renderer(plan, options),))
