"""The machinery the simulated query languages share (JQL in ``jira_api``, WIQL in
``azure_devops_api``): a tokenizer and a recursive-descent parser for OR / AND / parentheses,
comparisons, ``IN (...)`` lists and ORDER BY lists.

A language is a subclass that names its rules: the token pattern (one named group per token
kind), how a token's text is cleaned (quotes, brackets), the operator words it knows, the error
texts its server gives, how a field name is read (in a clause and in ORDER BY) and its
statement around the condition (``__init__``). The tree it builds is
``("or" | "and", left, right)`` or ``("clause", field, operator, [values])``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from pmolens.simulator.protocol import HttpError


class QueryParser:
    """Tokens and the shared descent; see the module doc for what a language supplies."""

    #: one named group per token kind ("op" for operators and punctuation, "word" for words)
    TOKEN: ClassVar[re.Pattern[str]]
    #: operators written as words (lower case); "in" takes a list, the others one value
    WORD_OPERATORS: ClassVar[frozenset[str]] = frozenset({"in"})
    #: error texts, ``str.format``-ed with ``pos`` / ``near`` (unexpected), ``word`` / ``upper``
    #: (expected), ``name`` (operator errors), ``token`` (trailing)
    UNEXPECTED: ClassVar[str]
    EXPECTED: ClassVar[str]
    CLOSE: ClassVar[str]
    NO_OPERATOR: ClassVar[str]
    BAD_OPERATOR: ClassVar[str]
    VALUE: ClassVar[str]
    OPEN_LIST: ClassVar[str]
    TRAILING: ClassVar[str]

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = self._tokenize(text)
        self.i = 0
        self.tree: Any = None
        self.order: list[tuple[str, bool]] = []

    # -- what a language supplies

    def fail(self, message: str) -> HttpError:
        """The error the language's server answers a query it cannot read with."""
        raise NotImplementedError

    def clean(self, kind: str, text: str) -> str:
        """A token's value from its text (quotes dropped and the like)."""
        return text

    def clause_field(self) -> str:
        """The field a clause starts with (consumed)."""
        raise NotImplementedError

    def sort_field(self) -> str:
        """A field of the ORDER BY list (consumed)."""
        raise NotImplementedError

    # -- tokens

    def _tokenize(self, text: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            match = self.TOKEN.match(text, pos)
            if not match or match.end() == pos:
                raise self.fail(self.UNEXPECTED.format(pos=pos, near=text[pos : pos + 20]))
            pos = match.end()
            kind = match.lastgroup or "word"
            out.append((kind, self.clean(kind, match.group(kind))))
            while pos < len(text) and text[pos].isspace():
                pos += 1
        return out

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def is_word(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == "word" and tok[1].lower() == word

    def expect(self, word: str) -> None:
        if not self.is_word(word):
            raise self.fail(self.EXPECTED.format(word=word, upper=word.upper()))
        self.i += 1

    def finish(self) -> None:
        """Every token read, else the first one left is the error."""
        if self.i != len(self.tokens):
            raise self.fail(self.TRAILING.format(token=self.tokens[self.i][1]))

    # -- the descent

    def disjunction(self) -> Any:
        return self._joined("or", self.conjunction)

    def conjunction(self) -> Any:
        return self._joined("and", self.term)

    def _joined(self, word: str, operand: Callable[[], Any]) -> Any:
        """``operand (word operand)*``, grouped from the left."""
        node = operand()
        while self.is_word(word):
            self.i += 1
            node = (word, node, operand())
        return node

    def term(self) -> Any:
        if self.peek() == ("op", "("):
            self.i += 1
            node = self.disjunction()
            if self.peek() != ("op", ")"):
                raise self.fail(self.CLOSE)
            self.i += 1
            return node
        name = self.clause_field()
        tok = self.peek()
        if tok is None:
            raise self.fail(self.NO_OPERATOR.format(name=name))
        if tok[0] == "word" and tok[1].lower() in self.WORD_OPERATORS:
            self.i += 1
            op = tok[1].lower()
            return ("clause", name, op, self.values() if op == "in" else [self.value()])
        if tok[0] != "op" or tok[1] in "(),":
            raise self.fail(self.BAD_OPERATOR.format(name=name))
        self.i += 1
        return ("clause", name, tok[1], [self.value()])

    def value(self) -> str:
        tok = self.peek()
        if tok is None or tok[0] in ("op", "field"):
            raise self.fail(self.VALUE)
        self.i += 1
        return tok[1]

    def values(self) -> list[str]:
        """``( value, ... )``"""
        if self.peek() != ("op", "("):
            raise self.fail(self.OPEN_LIST)
        self.i += 1
        values = [self.value()]
        while self.peek() == ("op", ","):
            self.i += 1
            values.append(self.value())
        if self.peek() != ("op", ")"):
            raise self.fail(self.CLOSE)
        self.i += 1
        return values

    def order_list(self) -> list[tuple[str, bool]]:
        """``field [ASC|DESC], ...`` after ORDER BY: (field, ascending) pairs."""
        order = []
        while True:
            name = self.sort_field()
            ascending = True
            if self.is_word("asc") or self.is_word("desc"):
                ascending = self.is_word("asc")
                self.i += 1
            order.append((name, ascending))
            if self.peek() != ("op", ","):
                return order
            self.i += 1
