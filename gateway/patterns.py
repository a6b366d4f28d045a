"""Translate the Java-style regular expressions in AWS service models for Python's ``re``.

Used by both validators of botocore's model: the gateway's (`gateway.awsmodel`) and the
emulator's (`gateway.emulator.validation`), which are kept independent on purpose (the
emulator stands in for AWS and so cross-checks the gateway), but share this translation.

AWS services validate ``pattern`` constraints with Java's ``java.util.regex``; a few
models use Unicode property classes (``\\p{L}``, ``\\p{ASCII}`` ...) that Python's ``re``
does not parse. We rewrite the ones we know into equivalent or slightly wider Python
classes. A wider class only makes the emulator accept a little more than AWS would,
never reject a request AWS accepts, which is the safe direction for a test double.
"""

from __future__ import annotations

import logging
import re

__all__ = ["compile_aws_pattern"]

_log = logging.getLogger(__name__)

# Outside a character class we can use exact constructs; inside one we can only splice
# class members, so some entries widen (e.g. \p{L} -> \w also admits digits and "_").
_OUTSIDE: dict[str, str] = {
    "ASCII": r"[\x00-\x7f]",
    "L": r"[^\W\d_]",
    "IsAlphabetic": r"[^\W\d_]",
    "Alpha": r"[^\W\d_]",
    "N": r"\d",
    "Nd": r"\d",
    "Digit": r"\d",
    "Alnum": r"[^\W_]",
    "Z": r"\s",
    "Zs": r"\s",
    "Space": r"\s",
    "M": r"\w",
    "Punct": r"[!-/:-@\[-`{-~]",
    "Print": r"[\x20-\x7e]",
    "Graph": r"[\x21-\x7e]",
}
_INSIDE: dict[str, str] = {
    "ASCII": r"\x00-\x7f",
    "L": r"\w",
    "IsAlphabetic": r"\w",
    "Alpha": r"\w",
    "N": r"\d",
    "Nd": r"\d",
    "Digit": r"\d",
    "Alnum": r"\w",
    "Z": r"\s",
    "Zs": r"\s",
    "Space": r"\s",
    "M": r"\w",
    "Punct": r"!-/:-@\[-`{-~",
    "Print": r"\x20-\x7e",
    "Graph": r"\x21-\x7e",
}


class UntranslatablePatternError(ValueError):
    """The pattern uses a construct we cannot express in Python's ``re``."""


def _translate(pattern: str) -> str:
    out: list[str] = []
    i = 0
    in_class = False
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt in "pP" and i + 2 < n and pattern[i + 2] == "{":
                end = pattern.find("}", i + 3)
                if end < 0:
                    raise UntranslatablePatternError(pattern)
                name = pattern[i + 3 : end]
                table = _INSIDE if in_class else _OUTSIDE
                if name not in table:
                    raise UntranslatablePatternError(f"\\{nxt}{{{name}}} in {pattern!r}")
                repl = table[name]
                if nxt == "P":
                    if in_class:
                        # A negated property inside a class cannot be spliced.
                        raise UntranslatablePatternError(pattern)
                    repl = "[^" + _INSIDE[name] + "]"
                out.append(repl)
                i = end + 1
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
            out.append(ch)
            # A "]" right after "[" or "[^" is a literal member, not the end.
            if pattern.startswith("^", i + 1):
                out.append("^")
                i += 1
            if pattern.startswith("]", i + 1):
                out.append("\\]")
                i += 1
            i += 1
            continue
        if ch == "]" and in_class:
            in_class = False
        elif (
            ch == "("
            and pattern.startswith("(?<", i)
            and not pattern.startswith(("(?<=", "(?<!"), i)
        ):
            # Java's named group syntax; Python 3.11 wants (?P<name>...).
            out.append("(?P<")
            i += 3
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def compile_aws_pattern(pattern: str) -> re.Pattern[str] | None:
    """Compile a model ``pattern`` once; ``None`` means "not enforced" (logged).

    AWS (Coral) matches the whole value against the pattern, so callers use
    ``fullmatch``; the explicit ``^...$`` anchors some models carry are harmless then.
    """
    try:
        # No DOTALL: like Java's, Python's "." does not match a newline.
        return re.compile(_translate(pattern))
    except (re.error, UntranslatablePatternError) as exc:
        # Skipping a pattern only makes the emulator more permissive than AWS.
        _log.warning("pattern %r not enforced: %s", pattern, exc)
        return None
