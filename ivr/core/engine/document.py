"""A TwiML document as text: exactly `str(response)`, without building an ElementTree first.

twilio's `TwiML.to_xml` copies the verbs into an ElementTree and serialises that through a text
wrapper around a byte buffer: on a webhook, as much time as the engine's own step. The tree is
still built with twilio's TwiML classes (the engine never writes XML by hand); only the
serialisation is done here, by the same rules as ElementTree's (sorted attributes, the same
escapes, `<Verb />` when empty, unencodable characters as character references). Anything this
does not expect (a namespaced name, a non-text value) is left to `to_xml` itself.
"""

from __future__ import annotations

from collections.abc import Callable

from twilio.twiml import TwiML

DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


class _Unusual(Exception):
    """A tree outside what this serialiser mirrors: `to_xml` renders it instead."""


def twiml_text(response: TwiML) -> str:
    """`str(response)`, character for character."""
    out = [DECLARATION]
    try:
        _element(response, out.append)
    except _Unusual:
        return response.to_xml()
    text = "".join(out)
    if text.isascii():
        return text
    # ElementTree writes UTF-8 with xmlcharrefreplace: lone surrogates become references.
    return text.encode("utf-8", "xmlcharrefreplace").decode("utf-8")


def _element(node: TwiML, write: Callable[[str], object]) -> None:
    name = node.name
    if type(name) is not str or name.startswith("{"):
        raise _Unusual(name)
    write("<" + name)
    for key in sorted(node.attrs):
        if type(key) is not str or key.startswith("{"):
            raise _Unusual(key)
        value = node.attrs[key]
        value = str(value).lower() if isinstance(value, bool) else str(value)
        write(f' {key}="{_attribute(value)}"')
    # As TwiML.xml: the value is the text, a string verb replaces it (or the tail of the
    # verb before it).
    text = node.value if node.value else None
    children: list[list] = []
    for verb in node.verbs:
        if isinstance(verb, str):
            if children:
                children[-1][1] = verb
            else:
                text = verb
        elif isinstance(verb, TwiML):
            children.append([verb, None])
        else:
            raise _Unusual(verb)
    if text is not None and not isinstance(text, str):
        raise _Unusual(text)  # a dict value (turned into JSON by to_xml), a number...
    if text or children:
        write(">")
        if text:
            write(_text(text))
        for child, tail in children:
            _element(child, write)
            if tail:
                write(_text(tail))
        write("</" + name + ">")
    else:
        write(" />")


def _text(text: str) -> str:
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def _attribute(text: str) -> str:
    text = _text(text)
    if '"' in text:
        text = text.replace('"', "&quot;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    if "\n" in text:
        text = text.replace("\n", "&#10;")
    if "\t" in text:
        text = text.replace("\t", "&#09;")
    return text
