"""Advanced filter logic such as `1 and (2 or 3)`, parsed with Python's `ast` (never `eval`).

Only filter numbers, `and`, `or` and parentheses are accepted, and `and` and `or` may only be
mixed with parentheses that say which comes first (as Marketo requires). Errors point at the
offending token by its position in the rule.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass

MAX_RULE_LENGTH = 500


class LogicError(ValueError):
    """A rule that cannot be used; the message names the token and its position (1-based)."""


@dataclass(frozen=True)
class Rule:
    """`op` is "and"/"or" over `items`, or a leaf filter `number` (1-based)."""

    op: str = ""
    items: tuple[Rule, ...] = ()
    number: int = 0


def _token_at(rule: str, offset: int) -> str:
    try:
        for token in tokenize.generate_tokens(io.StringIO(rule).readline):
            if token.start[1] <= offset < max(token.end[1], token.start[1] + 1) and token.string.strip():
                return token.string
    except (tokenize.TokenError, IndentationError):
        pass
    return rule[offset : offset + 1] or "end of the rule"


def parse_logic(rule: str, filter_count: int) -> Rule:
    if len(rule) > MAX_RULE_LENGTH:
        raise LogicError(f"the rule is longer than {MAX_RULE_LENGTH} characters")
    if "\n" in rule or "\r" in rule:
        raise LogicError("the rule must be one line")
    # "AND" / "Or" read as "and" / "or"; nothing else changes.
    source = re.sub(r"\b(and|or)\b", lambda m: m.group(1).lower(), rule, flags=re.IGNORECASE).strip()
    if not source:
        raise LogicError("the rule is empty; use filter numbers with and, or and parentheses")
    offset = len(rule) - len(rule.lstrip())
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as error:
        position = max((error.offset or 1) - 1, 0)
        raise LogicError(
            f"unexpected {_token_at(source, position)!r} at position {position + offset + 1} of the rule"
        ) from None
    return _convert(tree.body, source, offset, filter_count)


def _convert(node: ast.expr, source: str, offset: int, filter_count: int) -> Rule:
    position = getattr(node, "col_offset", 0)
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        if not 1 <= node.value <= filter_count:
            raise LogicError(
                f"filter {node.value} at position {position + offset + 1} does not exist: "
                f"the list has {filter_count} filter{'s' if filter_count != 1 else ''}"
            )
        return Rule(number=node.value)
    if isinstance(node, ast.BoolOp):
        op = "and" if isinstance(node.op, ast.And) else "or"
        items = []
        for child in node.values:
            if (
                isinstance(child, ast.BoolOp)
                and type(child.op) is not type(node.op)
                and not _parenthesized(child, source)
            ):
                raise LogicError(
                    f"'and' and 'or' are mixed without parentheses at position {child.col_offset + offset + 1}; "
                    "say which comes first, e.g. 1 and (2 or 3)"
                )
            items.append(_convert(child, source, offset, filter_count))
        return Rule(op=op, items=tuple(items))
    if isinstance(node, ast.BinOp | ast.Compare):
        # Point at the operator (+, <, ...), not at the number before it.
        left = node.left
        position = len(source[: left.end_col_offset or 0]) + (
            len(source[left.end_col_offset or 0 :]) - len(source[left.end_col_offset or 0 :].lstrip())
        )
    token = _token_at(source, position)
    raise LogicError(
        f"unexpected {token!r} at position {position + offset + 1}: use filter numbers, and, or and parentheses"
    )


def _parenthesized(node: ast.expr, source: str) -> bool:
    before = source[: node.col_offset].rstrip()
    after = source[node.end_col_offset or 0 :].lstrip()
    return before.endswith("(") and after.startswith(")")
