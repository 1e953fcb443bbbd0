"""Every failure of a demo handler becomes one line on the page (a `gr.Error`), never a stack trace.

Bad input (`ValueError`: the demo's `InputError`, catcodec's `AudioError`, the TTS `TextError` ...) is shown
as it is; anything else is logged with its traceback on the server and shown as one line, and the server
keeps serving.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
from typing import Any, Callable, Iterator

import gradio as gr

from catcodec.messages import reason

log = logging.getLogger("catcodec.demo")


class DemoError(Exception):
    """A demo that cannot start as asked (a model folder that will not load, ...): one line for the terminal."""


def page_error(exc: BaseException) -> gr.Error:
    """The `gr.Error` the page shows for `exc` (HTML-escaped: the message may hold a file name)."""
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, ValueError):
        return gr.Error(html.escape(reason(exc), quote=False), print_exception=False)
    log.error("demo handler failed", exc_info=exc)
    message = f"Something went wrong ({type(exc).__name__}: {reason(exc)}); details are in the server log."
    return gr.Error(html.escape(message, quote=False), print_exception=False)


def shown_on_page(fn: Callable) -> Callable:
    """Wrap a handler (function or generator) so that its exceptions reach the page as one-line `gr.Error`s."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise page_error(exc) from None

        return generator

    @functools.wraps(fn)
    def function(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise page_error(exc) from None

    return function


__all__ = ["DemoError", "page_error", "shown_on_page"]
