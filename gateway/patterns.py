"""Match the Java regular expressions of AWS service models with Java's semantics.

Used by both validators of botocore's model: the gateway's (`gateway.awsmodel`) and the
emulator's (`gateway.emulator.validation`), which are kept independent on purpose (the
emulator stands in for AWS and so cross-checks the gateway), but share this translation.

AWS services check ``pattern`` constraints with ``java.util.regex`` (default flags, whole
value). Where Python reads the same text differently, we rewrite it to what Java means:

- ``\\s \\d \\w`` (and ``\\S \\D \\W``) are ASCII-only in Java: ``[ \\t\\n\\x0B\\f\\r]``,
  ``[0-9]``, ``[a-zA-Z0-9_]``; Python's are Unicode-wide (NBSP, U+2028, Arabic digits...).
- ``.`` excludes every Java line terminator (``\\n \\r \\u0085 \\u2028 \\u2029``), not only
  ``\\n``; ``$`` (and ``\\Z``) match at the end or before one final line terminator.
- POSIX classes (``\\p{Alpha}``, ``\\p{Punct}``, ``\\p{ASCII}``...) are ASCII-only;
  Unicode categories (``\\p{L}``, ``\\p{Z}``, ``\\p{N}``, ``\\p{M}``...) are Unicode's, so
  those patterns are compiled with the `regex` package, which knows the categories
  (``\\p{Z}`` is space separators, never a tab). Unicode versions may differ for
  characters assigned after the JDK's Unicode release; nothing else does.

Constructs whose Java meaning we do not reproduce (nested classes, ``&&``, ``\\b``, inline
flags, ``\\Q...\\E`` ...) make the pattern "not enforced" (logged once at start-up): the
validator then accepts more than AWS would, never rejects what AWS accepts.
"""

from __future__ import annotations

import logging
import re
from typing import Protocol

import regex

__all__ = ["AwsPattern", "UntranslatablePatternError", "compile_aws_pattern", "translate"]

_log = logging.getLogger(__name__)


class AwsPattern(Protocol):
    """A compiled model pattern (`re` or `regex`); callers use `fullmatch` as AWS does."""

    def fullmatch(self, string: str) -> object | None: ...


class UntranslatablePatternError(ValueError):
    """The pattern uses a construct whose Java meaning we do not reproduce."""


# Java's ASCII-only classes, as class members (spliceable inside [...]).
_SPACE = r" \t\n\x0b\f\r"
_POSIX: dict[str, str] = {
    "ASCII": r"\x00-\x7f",
    "Lower": "a-z",
    "Upper": "A-Z",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": r"!-/:-@\[-`{-~",
    "Graph": r"\x21-\x7e",
    "Print": r"\x20-\x7e",
    "Blank": r" \t",
    "Cntrl": r"\x00-\x1f\x7f",
    "XDigit": "0-9a-fA-F",
    "Space": _SPACE,
}
# Java's shorthand classes; the upper-case form is the complement.
_SHORTHAND: dict[str, str] = {"s": _SPACE, "d": "0-9", "w": "a-zA-Z0-9_"}
# Unicode general categories, the same names in Java and in `regex`.
_CATEGORIES = frozenset(
    "L Lu Ll Lt Lm Lo M Mn Mc Me N Nd Nl No P Pc Pd Ps Pe Pi Pf Po "  # noqa: SIM905
    "S Sm Sc Sk So Z Zs Zl Zp C Cc Cf Co Cn".split()
)
# Java binary properties spelled `\p{IsX}`, with their `regex` names.
_BINARY: dict[str, str] = {
    "IsAlphabetic": "Alphabetic",
    "IsLetter": "L",
    "IsDigit": "Nd",
    "IsWhite_Space": "White_Space",
    "IsWhiteSpace": "White_Space",
    "IsLowercase": "Lowercase",
    "IsUppercase": "Uppercase",
}
_LINE_TERMINATORS = r"\n\r\x85\u2028\u2029"
_DOT = f"[^{_LINE_TERMINATORS}]"
# Java's `$` without MULTILINE: at the end, or before one final terminator ("\r\n" counts
# as one, and there is no end between its "\r" and "\n").
_DOLLAR = r"(?=(?:\r\n|(?<!\r)\n|[\r\x85\u2028\u2029])?\Z)"
# Escapes that mean the same in both dialects.
_SAME_ESCAPES = frozenset("tnrfa123456789xuA")


def translate(pattern: str) -> tuple[str, int | None]:
    """Java pattern -> (Python pattern, `regex` flags it needs, or None: plain `re`)."""
    return _Translator(pattern).run()


class _Translator:
    def __init__(self, pattern: str) -> None:
        self.src = pattern
        self.out: list[str] = []
        self.in_class = False
        self.unicode = False
        #: A class holds a complement (`[\s\S]`): spliced as a nested set, `regex` V1 syntax.
        self.nested = False

    def fail(self, why: str) -> UntranslatablePatternError:
        return UntranslatablePatternError(f"{why} in {self.src!r}")

    def run(self) -> tuple[str, int | None]:
        src, i, n = self.src, 0, len(self.src)
        while i < n:
            ch = src[i]
            if ch == "\\":
                i = self.escape(i)
            elif self.in_class:
                i = self.class_char(i)
            elif ch == "[":
                i = self.open_class(i)
            elif ch == ".":
                self.out.append(_DOT)
                i += 1
            elif ch == "$":
                self.out.append(_DOLLAR)
                i += 1
            elif ch == "(" and src.startswith("(?", i):
                i = self.group(i)
            else:
                self.out.append(ch)
                i += 1
        if self.in_class:
            raise self.fail("an unclosed class")
        flags = regex.V1 if self.nested else regex.V0 if self.unicode else None
        return "".join(self.out), flags

    def open_class(self, i: int) -> int:
        self.in_class = True
        self.out.append("[")
        i += 1
        if self.src.startswith("^", i):
            self.out.append("^")
            i += 1
        if self.src.startswith("]", i):  # a "]" first in a class is a member
            self.out.append(r"\]")
            i += 1
        return i

    def class_char(self, i: int) -> int:
        ch = self.src[i]
        if ch == "[" or self.src.startswith(("&&", "||", "--", "~~"), i):
            # Java's set algebra, or what `regex` V1 would read as its own.
            raise self.fail("a nested class or a set operator")
        if ch == "]":
            self.in_class = False
        self.out.append(ch)
        return i + 1

    def group(self, i: int) -> int:
        src = self.src
        if src.startswith(("(?:", "(?=", "(?!", "(?<=", "(?<!", "(?>"), i):
            self.out.append("(")
            return i + 1
        if src.startswith("(?<", i):  # Java's named group; Python spells it (?P<name>...)
            self.out.append("(?P<")
            return i + 3
        raise self.fail("an inline flag group")  # (?i) is ASCII-only in Java, not in Python

    def escape(self, i: int) -> int:
        src = self.src
        if i + 1 >= len(src):
            raise self.fail("a trailing backslash")
        nxt = src[i + 1]
        if nxt in "pP":
            return self.property(i, negated=nxt == "P")
        if nxt.lower() in _SHORTHAND:
            self.shorthand(nxt)
        elif nxt == "Z":
            self.outside_only(_DOLLAR, "\\Z")
        elif nxt == "z":
            self.outside_only(r"\Z", "\\z")
        elif nxt == "e":
            self.out.append(r"\x1b")
        elif nxt == "0" or (nxt.isalnum() and nxt not in _SAME_ESCAPES):
            raise self.fail(f"the escape \\{nxt}")  # \b \h \v \R \Q \G octal \0 ...
        else:
            self.out.append(src[i : i + 2])
        return i + 2

    def outside_only(self, replacement: str, name: str) -> None:
        if self.in_class:
            raise self.fail(f"{name} in a class")
        self.out.append(replacement)

    def shorthand(self, letter: str) -> None:
        members = _SHORTHAND[letter.lower()]
        negated = letter.isupper()
        if not self.in_class:
            self.out.append(f"[{'^' if negated else ''}{members}]")
        elif negated:
            self.complement_in_class(members)
        else:
            self.out.append(members)

    def complement_in_class(self, members: str) -> None:
        self.nested = True
        self.out.append(f"[^{members}]")

    def property(self, i: int, *, negated: bool) -> int:
        src = self.src
        if src.startswith("{", i + 2):
            end = src.find("}", i + 3)
            if end < 0:
                raise self.fail("an unclosed \\p{")
            name, after = src[i + 3 : end], end + 1
        else:  # \pL: a one-letter category
            name, after = src[i + 2 : i + 3], i + 3
        letter = "P" if negated else "p"
        if name in _POSIX:
            members = _POSIX[name]
            if not negated:
                self.out.append(members if self.in_class else f"[{members}]")
            elif self.in_class:
                self.complement_in_class(members)
            else:
                self.out.append(f"[^{members}]")
            return after
        unicode_name = name[2:] if name.startswith("Is") and name[2:] in _CATEGORIES else name
        unicode_name = _BINARY.get(name, unicode_name)
        if unicode_name not in _CATEGORIES and name not in _BINARY:
            raise self.fail(f"\\{letter}{{{name}}}")
        self.unicode = True
        self.out.append(f"\\{letter}{{{unicode_name}}}")
        return after


def compile_aws_pattern(pattern: str) -> AwsPattern | None:
    """Compile a model ``pattern`` once; ``None`` means "not enforced" (logged).

    AWS (Coral) matches the whole value against the pattern, so callers use
    ``fullmatch``; the explicit ``^...$`` anchors some models carry are harmless then.
    """
    try:
        source, flags = translate(pattern)
        # `regex` only where `re` lacks the syntax: Unicode properties, nested sets (V1).
        compiled: AwsPattern = re.compile(source) if flags is None else regex.compile(source, flags)
    except (re.error, regex.error, UntranslatablePatternError) as exc:
        # Skipping a pattern only makes the validator more permissive than AWS.
        _log.warning("pattern %r not enforced: %s", pattern, exc)
        return None
    return compiled
