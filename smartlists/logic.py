"""Advanced filter logic such as `1 and (2 or 3)`, read by a small parser of its own (never `eval`).

Only plain decimal filter numbers (`1`, `12`; not `0x1`, `1_0` or Arabic-Indic digits), `and`, `or` (any case)
and parentheses are accepted, and `and` and `or` may only be mixed with parentheses that say which
comes first (as Marketo requires). Errors name the offending token and its position in the rule
(1-based, in characters), or say what is missing at its end.

A hand-written parser rather than Python's `ast`: Python's grammar accepts more than a rule
(`0x1`, `1_0`) and its syntax errors point at places a marketer does not recognise (`1 and 2 or`
blamed the `1`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_RULE_LENGTH = 500
# A filter number is ASCII digits only: \d would take other scripts' digits too.
# Any Unicode space separates (a non-breaking space pasted from a document is a space to a reader).
_TOKEN = re.compile(r"(?P<number>[0-9]+)|(?P<word>[A-Za-z_]+)|(?P<paren>[()])|(?P<space>\s+)")


class LogicError(ValueError):
    """A rule that cannot be used; the message names the token and its position (1-based)."""


@dataclass(frozen=True)
class Rule:
    """`op` is "and"/"or" over `items`, or a leaf filter `number` (1-based)."""

    op: str = ""
    items: tuple[Rule, ...] = ()
    number: int = 0


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "and", "or", "(", ")"
    text: str
    position: int  # 1-based


def _tokens(rule: str) -> list[_Token]:
    tokens: list[_Token] = []
    index = 0
    while index < len(rule):
        match = _TOKEN.match(rule, index)
        if match is None:
            # Anything else (a symbol, another script's digit, `0x1`'s tail is a word): name it.
            raise LogicError(
                f"unexpected {rule[index]!r} at position {index + 1}: use filter numbers, and, or and parentheses"
            )
        text, kind = match.group(), match.lastgroup
        if kind == "word":
            if rule[match.end() : match.end() + 1].isalnum():
                # `and2` is one token to a reader, as `2and` is (below): not an operator.
                word = re.match(r"[0-9A-Za-z_]+", rule[index:])
                assert word is not None
                raise LogicError(
                    f"unexpected {word.group()!r} at position {index + 1}: "
                    "put a space between an operator and a filter number"
                )
            if text.lower() not in ("and", "or"):
                raise LogicError(
                    f"unexpected {text!r} at position {index + 1}: use filter numbers, and, or and parentheses"
                )
            tokens.append(_Token(text.lower(), text, index + 1))
        elif kind == "number":
            following = rule[match.end() : match.end() + 1]
            if following.isalnum() or following == "_":
                # `0x1`, `1_0`, `2and`: one token to a reader, not a filter number.
                word = re.match(r"[0-9A-Za-z_]+", rule[index:])
                assert word is not None
                raise LogicError(
                    f"unexpected {word.group()!r} at position {index + 1}: "
                    "a filter number is written in plain digits, such as 1 or 12"
                )
            tokens.append(_Token("number", text, index + 1))
        elif kind == "paren":
            tokens.append(_Token(text, text, index + 1))
        index = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Token], filter_count: int) -> None:
        self.tokens = tokens
        self.index = 0
        self.filter_count = filter_count

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def expression(self, opened: _Token | None) -> Rule:
        """Operands joined by one kind of operator, up to the end or the `)` closing `opened`."""
        items = [self.operand()]
        op = ""
        while True:
            token = self.peek()
            if token is None:
                if opened is not None:
                    raise LogicError(f"the '(' at position {opened.position} is never closed")
                break
            if token.kind == ")":
                if opened is None:
                    raise LogicError(f"unexpected ')' at position {token.position}: no '(' opens it")
                break
            if token.kind not in ("and", "or"):
                raise LogicError(
                    f"unexpected {token.text!r} at position {token.position}: filters are joined by and or or"
                )
            self.index += 1
            if self.peek() is None:
                # Said before any mixing: the dangling operator is what to fix ("1 and 2 or").
                raise LogicError(
                    f"the rule ends after {token.text!r} at position {token.position}: "
                    "a filter number or '(' must follow it"
                )
            if op and token.kind != op:
                raise LogicError(
                    f"'and' and 'or' are mixed without parentheses at position {token.position}; "
                    "say which comes first, e.g. 1 and (2 or 3)"
                )
            op = token.kind
            items.append(self.operand())
        return items[0] if len(items) == 1 else Rule(op=op, items=tuple(items))

    def operand(self) -> Rule:
        token = self.peek()
        assert token is not None  # callers look first
        self.index += 1
        if token.kind == "number":
            number = int(token.text)
            if not 1 <= number <= self.filter_count:
                raise LogicError(
                    f"filter {token.text} at position {token.position} does not exist: "
                    f"the list has {self.filter_count} filter{'s' if self.filter_count != 1 else ''}"
                )
            return Rule(number=number)
        if token.kind == "(":
            if self.peek() is None:
                raise LogicError(f"the '(' at position {token.position} is never closed")
            inner = self.expression(token)
            self.index += 1  # the ")" that `expression` stopped at
            return inner
        raise LogicError(f"unexpected {token.text!r} at position {token.position} of the rule")


def parse_logic(rule: str, filter_count: int) -> Rule:
    if len(rule) > MAX_RULE_LENGTH:
        raise LogicError(f"the rule is longer than {MAX_RULE_LENGTH} characters")
    if "\n" in rule or "\r" in rule:
        raise LogicError("the rule must be one line")
    tokens = _tokens(rule)
    if not tokens:
        raise LogicError("the rule is empty; use filter numbers with and, or and parentheses")
    return _Parser(tokens, filter_count).expression(None)


def logic_rule(logic: str, filter_count: int) -> Rule:
    """A definition's logic as a rule: "all" or "any" of its filters (any case), or a rule
    such as `1 and (2 or 3)`. Raises LogicError."""
    words = logic.strip().lower()
    if words in ("all", "any"):
        numbers = tuple(Rule(number=n) for n in range(1, filter_count + 1))
        return Rule(op="and" if words == "all" else "or", items=numbers)
    return parse_logic(logic, filter_count)
