"""The comment or docstring written beside each field, for ``--help``.

Read from the class's source with ``ast`` and ``tokenize``; any failure (no source in
a notebook or ``python -c``, odd indentation) just means no descriptions.
"""

from __future__ import annotations

import ast
import inspect
import io
import logging
import textwrap
import tokenize

__all__ = ["field_docs"]

logger = logging.getLogger("configs")


def field_docs(cls: type) -> dict[str, str]:
    """``{field: description}`` for ``cls`` and its bases (a subclass's own text wins).

    A field's description is, in order of preference: the comment at the end of its
    line (``lr: float = 1e-3  # learning rate``), a string literal on the next line
    (an attribute docstring), or the comment lines right above it.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or "__annotations__" not in klass.__dict__:
            continue
        try:
            docs.update(_docs_of(klass))
        except Exception as exc:  # no source, or source we cannot parse: no descriptions
            logger.debug("no field descriptions for %s: %s", klass.__qualname__, exc)
    return docs


def _docs_of(klass: type) -> dict[str, str]:
    source = textwrap.dedent(inspect.getsource(klass))
    tree = ast.parse(source)
    class_node = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.name == klass.__name__
    )
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            # "#:" is the Sphinx spelling of a field comment; its colon is not part of the text.
            comments[token.start[0]] = token.string.lstrip("#").lstrip(":").strip()
    lines = source.splitlines()
    docs: dict[str, str] = {}
    body = class_node.body
    for i, node in enumerate(body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        name = node.target.id
        end = node.end_lineno or node.lineno
        trailing = comments.get(end) or comments.get(node.lineno)
        if trailing:
            docs[name] = trailing
            continue
        following = body[i + 1] if i + 1 < len(body) else None
        if (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[name] = " ".join(inspect.cleandoc(following.value.value).split())
            continue
        above: list[str] = []
        line = node.lineno - 1
        while line >= 1 and line in comments and lines[line - 1].lstrip().startswith("#"):
            above.insert(0, comments[line])
            line -= 1
        if above:
            docs[name] = " ".join(above)
    return docs
