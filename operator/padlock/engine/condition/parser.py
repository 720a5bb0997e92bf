"""Parser for Falco's condition language (libsinsp ``filter/parser.cpp`` at libs 0.25.4).

Called by ``padlock.engine.condition.parse`` and, through it, by the loader. Recursive descent over the
text with compiled regular expressions, following the EBNF of ``parser.h``: ``not`` binds tighter than
``and``, which binds tighter than ``or``; keywords are lower-case only; word operators need a blank
after them. Errors carry the offset into the text. Unlike libs 0.25.4 the nesting depth guard works
(``MAX_DEPTH``), so hostile input gives a clean error instead of exhausting the stack.
"""

from __future__ import annotations

import re

from padlock.engine import limits
from padlock.engine.condition import ast

#: Maximum nesting of parentheses/``not``; libs sets 1000 but its guard is ineffective in 0.25.4.
#: Python's stack is the binding limit here; upstream conditions nest less than 10 deep.
MAX_DEPTH = 150

_BLANKS = re.compile(r"[ \t\b\r\n]*")
_BLANK_CHARS = frozenset(" \t\b\r\n")
# libsinsp writes identifiers as ``[a-zA-Z]+[a-zA-Z0-9_]*``; the same language written without the
# overlapping quantifiers, possessive, so a long identifier is scanned once (the libsinsp spelling
# backtracks quadratically on a 100k-letter word with no dot, and holds the interpreter).
_FIELD = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*+(?:\.[a-zA-Z][a-zA-Z0-9_]*+)++")
_IDENT = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*+")
_FIELD_ARG_BARE = re.compile(r"[^ \b\t\n\r\[\]\"']+")
_BARE_STR = re.compile(r"[^ \b\t\n\r(),=\"']+")
_HEX = re.compile(r"0[xX][0-9a-fA-F]+")
_NUMBER = re.compile(r"[+\-]?[0-9]+[.]?[0-9]*(?:[eE][+\-][0-9]+)?")
_QUOTED = re.compile(r"\"(?:\\\"|[^\"])*?\"|'(?:\\'|[^'])*?'", re.DOTALL)
_TRANSFORMER = re.compile(r"(tolower|toupper|b64|basename|len|join|concat|getopt)\(")
_VAL = re.compile(r"val\(")
_KW_AND = re.compile(r"and(?=[ \t\b\r\n(])")
_KW_OR = re.compile(r"or(?=[ \t\b\r\n(])")
_KW_NOT = re.compile(r"not(?=[ \t\b\r\n(])")
_UNARY_OP = re.compile(r"exists")
_NUM_OP = re.compile(r"<=|<|>=|>")
_STR_OP = re.compile(
    r"(==|=|!=)|(bcontains|bstartswith|contains|endswith|glob|icontains|iglob|startswith|regex)(?=[ \t\b\r\n])"
)
_LIST_OP = re.compile(r"intersects|in|pmatch")
_MODIFIER = re.compile(r"(oneof|anyof|allof)(?=[ \t\b\r\n])")

CHECK_OPERATORS = (
    "exists, <=, <, >=, >, ==, =, !=, bcontains, bstartswith, contains, endswith, glob, icontains, "
    "iglob, startswith, regex, intersects, in, pmatch"
)

_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "\\": "\\", "/": "/"}


class ConditionError(ValueError):
    """A condition that does not parse: ``message`` in libsinsp's words, ``offset`` into the text."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def unescape(quoted: str, offset: int) -> str:
    """Decode a quoted string's content like libsinsp ``escaping.cpp``; the quotes are included."""
    quote = quoted[0]
    body = quoted[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:
            raise ConditionError("unsupported string escape sequence", offset + 1 + i)
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
        elif nxt == quote:
            out.append(quote)
        elif nxt == " ":
            # Legacy: a backslash before a blank is kept as a literal backslash.
            out.append("\\ ")
        else:
            raise ConditionError("unsupported string escape sequence", offset + 1 + i)
        i += 2
    return "".join(out)


class _Parser:
    __slots__ = ("depth", "pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    # -- helpers -------------------------------------------------------------------------------
    def blanks(self) -> None:
        # Hot path: most positions are not blank, so test one character before running the regex.
        text, pos = self.text, self.pos
        if pos < len(text) and text[pos] in _BLANK_CHARS:
            m = _BLANKS.match(text, pos)
            if m is not None:
                self.pos = m.end()

    def match(self, rx: re.Pattern[str]) -> re.Match[str] | None:
        m = rx.match(self.text, self.pos)
        if m is not None:
            self.pos = m.end()
        return m

    def lit(self, s: str) -> bool:
        if self.text.startswith(s, self.pos):
            self.pos += len(s)
            return True
        return False

    def last_token(self) -> str:
        """The token before the current position, for ``unexpected token after 'X'`` messages."""
        end = self.pos
        while end > 0 and self.text[end - 1] in " \t\b\r\n":
            end -= 1
        start = end
        while start > 0 and self.text[start - 1] not in " \t\b\r\n":
            start -= 1
        return self.text[start:end]

    def error(self, message: str) -> ConditionError:
        return ConditionError(message, self.pos)

    def bounded(self, m: re.Match[str]) -> None:
        if m.end() - m.start() > limits.MAX_NAME_CHARS:
            raise self.error(f"identifier '{limits.shorten(m.group(0), 40)}' is longer than "
                             f"{limits.MAX_NAME_CHARS} characters (Padlock's limit)")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"exceeded max depth limit of {MAX_DEPTH}")

    # -- grammar -------------------------------------------------------------------------------
    def parse(self) -> ast.Node:
        self.blanks()
        if self.pos >= len(self.text):
            raise self.error("filter input string is empty")
        node = self.or_expr()
        self.blanks()
        if self.pos < len(self.text):
            raise self.error(f"unexpected token after '{self.last_token()}', expecting 'or', 'and'")
        return node

    def or_expr(self) -> ast.Node:
        start = self.pos
        first = self.and_expr()
        children: list[ast.Node] | None = None
        while True:
            save = self.pos
            self.blanks()
            if not self.text.startswith("or", self.pos) or self.match(_KW_OR) is None:
                self.pos = save
                break
            if children is None:
                children = _flatten(ast.Or, first)
            children.extend(_flatten(ast.Or, self.and_expr()))
        if children is None:
            return first
        return ast.Or(tuple(children), start)

    def and_expr(self) -> ast.Node:
        start = self.pos
        first = self.not_expr()
        children: list[ast.Node] | None = None
        while True:
            save = self.pos
            self.blanks()
            if not self.text.startswith("and", self.pos) or self.match(_KW_AND) is None:
                self.pos = save
                break
            if children is None:
                children = _flatten(ast.And, first)
            children.extend(_flatten(ast.And, self.not_expr()))
        if children is None:
            return first
        return ast.And(tuple(children), start)

    def not_expr(self) -> ast.Node:
        self.blanks()
        start = self.pos
        if self.text.startswith("not", start) and self.match(_KW_NOT) is not None:
            self.enter()
            child = self.not_expr()
            self.depth -= 1
            return ast.Not(child, start)
        return self.check()

    def check(self) -> ast.Node:
        self.blanks()
        start = self.pos
        text = self.text
        if start >= len(text):
            raise self.error(f"unexpected end of input after '{self.last_token()}', expecting a check")
        if text[start] == "(":
            self.pos += 1
            self.enter()
            node = self.or_expr()
            self.depth -= 1
            self.blanks()
            if not self.lit(")"):
                raise self.error("expected a ')' token")
            return node
        lhs: ast.FieldRef | ast.Transformer
        m = _TRANSFORMER.match(text, start)
        if m is not None:
            self.pos = m.end()
            lhs = self.transformer_tail(m.group(1), start)
        else:
            m = _FIELD.match(text, start)
            if m is not None:
                self.bounded(m)
                self.pos = m.end()
                lhs = ast.FieldRef(m.group(0), self.field_arg(), start)
            else:
                m = _IDENT.match(text, start)
                if m is None or m.group(0) in ("and", "or", "not"):
                    raise self.error("expected a field, a macro name, 'not' or '('")
                self.bounded(m)
                self.pos = m.end()
                return ast.MacroRef(m.group(0), start)
        return self.condition(lhs, start)

    def field_arg(self) -> str | None:
        if not self.lit("["):
            return None
        m = _QUOTED.match(self.text, self.pos)
        if m is not None:
            value = unescape(m.group(0), self.pos)
            self.pos = m.end()
        else:
            m = self.match(_FIELD_ARG_BARE)
            if m is None:
                raise self.error("expected a field argument")
            value = m.group(0)
        if not self.lit("]"):
            raise self.error("expected a ']' token")
        return value

    def transformer_tail(self, name: str, start: int) -> ast.Transformer:
        self.enter()
        args: list[ast.Arg] = [self.transformer_arg()]
        while True:
            self.blanks()
            if self.lit(","):
                args.append(self.transformer_arg())
                continue
            if self.lit(")"):
                break
            raise self.error("expected a ',' or ')' token")
        self.depth -= 1
        return ast.Transformer(name, tuple(args), self.field_arg(), start)

    def transformer_arg(self) -> ast.Arg:
        self.blanks()
        start = self.pos
        text = self.text
        m = _TRANSFORMER.match(text, start)
        if m is not None:
            self.pos = m.end()
            return self.transformer_tail(m.group(1), start)
        m = _FIELD.match(text, start)
        if m is not None:
            self.pos = m.end()
            return ast.FieldRef(m.group(0), self.field_arg(), start)
        m = _QUOTED.match(text, start)
        if m is not None:
            self.pos = m.end()
            return ast.Str(unescape(m.group(0), start), start, True)
        m = self.match(_HEX) or self.match(_NUMBER)
        if m is not None:
            return ast.Num(m.group(0), start)
        if start < len(text) and text[start] == "(":
            return self.list_value()
        raise self.error("expected a field, transformer, string, number or list as transformer argument")

    def condition(self, lhs: ast.FieldRef | ast.Transformer, start: int) -> ast.Check:
        self.blanks()
        if self.match(_UNARY_OP) is not None:
            return ast.Check(lhs, "exists", None, None, start)
        m = self.match(_NUM_OP)
        if m is not None:
            return ast.Check(lhs, m.group(0), self.num_or_transformer(), None, start)
        m = self.match(_STR_OP)
        if m is not None:
            op = m.group(0)
            self.blanks()
            mod = self.match(_MODIFIER)
            if mod is not None:
                self.blanks()
                return ast.Check(lhs, op, self.list_or_ref(), mod.group(1), start)
            return ast.Check(lhs, op, self.str_or_transformer(), None, start)
        m = self.match(_LIST_OP)
        if m is not None:
            op = m.group(0)
            self.blanks()
            tr = self.try_transformer_value()
            if tr is not None:
                return ast.Check(lhs, op, tr, None, start)
            return ast.Check(lhs, op, self.list_or_ref(), None, start)
        raise self.error(f"expected a valid check operator: one of {CHECK_OPERATORS}")

    def try_transformer_value(self) -> ast.Transformer | None:
        start = self.pos
        m = _TRANSFORMER.match(self.text, start)
        if m is not None:
            self.pos = m.end()
            return self.transformer_tail(m.group(1), start)
        if self.match(_VAL) is not None:
            self.blanks()
            fm = self.match(_FIELD)
            if fm is None:
                raise self.error("expected a field inside val()")
            fref = ast.FieldRef(fm.group(0), self.field_arg(), fm.start())
            self.blanks()
            if not self.lit(")"):
                raise self.error("expected a ')' token")
            return ast.Transformer("val", (fref,), None, start)
        return None

    def num_or_transformer(self) -> ast.Value:
        self.blanks()
        tr = self.try_transformer_value()
        if tr is not None:
            return tr
        start = self.pos
        m = self.match(_HEX) or self.match(_NUMBER)
        if m is None:
            raise self.error("expected a number value")
        return ast.Num(m.group(0), start)

    def str_or_transformer(self) -> ast.Value:
        self.blanks()
        tr = self.try_transformer_value()
        if tr is not None:
            return tr
        return self.str_value()

    def str_value(self) -> ast.Str:
        start = self.pos
        m = _QUOTED.match(self.text, start)
        if m is not None:
            self.pos = m.end()
            return ast.Str(unescape(m.group(0), start), start, True)
        m = self.match(_BARE_STR)
        if m is None:
            raise self.error("expected a string value")
        return ast.Str(m.group(0), start)

    def list_or_ref(self) -> ast.ListValue | ast.ListRef:
        start = self.pos
        if start < len(self.text) and self.text[start] == "(":
            return self.list_value()
        m = self.match(_IDENT)
        if m is None:
            raise self.error("expected a list value")
        return ast.ListRef(m.group(0), start)

    def list_value(self) -> ast.ListValue:
        start = self.pos
        self.pos += 1  # '('
        items: list[ast.Str] = []
        self.blanks()
        if self.lit(")"):
            return ast.ListValue((), start)
        while True:
            self.blanks()
            items.append(self.str_value())
            self.blanks()
            if self.lit(","):
                continue
            if self.lit(")"):
                break
            raise self.error("expected a ',' or ')' token in list")
        return ast.ListValue(tuple(items), start)


def _flatten(kind: type[ast.And] | type[ast.Or], node: ast.Node) -> list[ast.Node]:
    if isinstance(node, kind):
        return list(node.children)
    return [node]


def parse(text: str) -> ast.Node:
    """Parse a condition; raises ``ConditionError`` (message, offset) on bad input, nothing else."""
    if len(text) > limits.MAX_CONDITION_CHARS:
        raise ConditionError(f"condition is {len(text)} characters long, over the limit of "
                             f"{limits.MAX_CONDITION_CHARS} (Padlock's limit)", 0)
    try:
        return _Parser(text).parse()
    except RecursionError:  # pragma: no cover - MAX_DEPTH keeps well below the stack limit
        raise ConditionError(f"exceeded max depth limit of {MAX_DEPTH}", 0) from None
