"""A read-only LibCST traversal that does not rebuild the tree.

`node.visit(visitor)` in LibCST reconstructs and re-validates every node it
passes through (`_visit_and_replace_children` builds a new node even for a
read-only `CSTVisitor`). Measured on torch/pandas/numpy source, that rebuild
made one traversal cost about as much as parsing the file. `visit` here calls
the same `visit_<Node>` / `leave_<Node>` methods on the same nodes in the same
order (the child order is read from LibCST's own `_visit_and_replace_children`),
but only reads attributes.

`traverse(..., skip=TRIVIA)` additionally never descends into whitespace,
punctuation and operator tokens, which are about half of all nodes and never
contain an expression or a statement.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable

import libcst as cst
from libcst._nodes import op as _op
from libcst._nodes import whitespace as _whitespace

_FIELD_CALL = re.compile(
    r"visit_(?:required|optional|sentinel|sequence|iterable|body_sequence|body_iterable)"
    r"\(\s*self,\s*\"(\w+)\""
)
_SEQUENCES = (tuple, list)
_USE_CHILDREN = object()  # child order unknown: fall back to `node.children`
_FIELDS: dict[type, object] = {}


def _all_node_types() -> frozenset[type]:
    found: set[type] = set()
    pending = [cst.CSTNode]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub not in found:
                found.add(sub)
                pending.append(sub)
    return frozenset(found)


NODE_TYPES = _all_node_types()

# Tokens that hold only whitespace, comments or a keyword/operator symbol.
_TRIVIA_BASES = frozenset(
    {
        _op.BaseUnaryOp,
        _op.BaseBooleanOp,
        _op.BaseBinaryOp,
        _op.BaseCompOp,
        _op.BaseAugOp,
        _whitespace.BaseParenthesizableWhitespace,
        cst.Newline,
        cst.Comment,
        cst.TrailingWhitespace,
        cst.EmptyLine,
        cst.Comma,
        cst.Dot,
        cst.Colon,
        cst.Semicolon,
        cst.AssignEqual,
        cst.LeftParen,
        cst.RightParen,
        cst.LeftSquareBracket,
        cst.RightSquareBracket,
        cst.LeftCurlyBrace,
        cst.RightCurlyBrace,
    }
)
# (MRO lookups rather than issubclass: ABC subclass checks are slow at import.)
TRIVIA: frozenset[type] = frozenset(
    t for t in NODE_TYPES if not _TRIVIA_BASES.isdisjoint(t.__mro__)
)


def child_fields(node_type: type) -> tuple[str, ...] | None:
    """Attribute names LibCST visits for this node type, in visiting order."""
    fields = _FIELDS.get(node_type)
    if fields is None:
        fields = _FIELDS[node_type] = _read_fields(node_type)
    return None if fields is _USE_CHILDREN else fields  # type: ignore[return-value]


def _read_fields(node_type: type) -> object:
    try:
        source = inspect.getsource(node_type._visit_and_replace_children)
    except (OSError, TypeError, AttributeError):
        return _USE_CHILDREN
    return tuple(dict.fromkeys(_FIELD_CALL.findall(source)))


def traverse(
    root: cst.CSTNode,
    enter: Callable[[cst.CSTNode], object],
    leave: Callable[[cst.CSTNode], object],
    on_attribute: Callable[[cst.CSTNode, str], object] | None = None,
    skip: frozenset[type] = frozenset(),
) -> None:
    """Depth-first, in source order; children are skipped when enter returns False.

    `leave` runs for every entered node, as in LibCST. `on_attribute(node, name)`
    runs before the children held by attribute `name` are walked (only for
    attributes that hold a node). Nodes whose type is in `skip` are not walked.
    """
    fields_of = _FIELDS

    def walk(node: cst.CSTNode) -> None:
        if enter(node) is not False:
            cls = node.__class__
            fields = fields_of.get(cls)
            if fields is None:
                child_fields(cls)
                fields = fields_of[cls]
            if fields is _USE_CHILDREN:
                for child in node.children:
                    if child.__class__ not in skip:
                        walk(child)
            else:
                for name in fields:  # type: ignore[union-attr]
                    value = getattr(node, name)
                    if value.__class__ in _SEQUENCES:
                        if value:
                            if on_attribute is not None:
                                on_attribute(node, name)
                            for child in value:
                                if child.__class__ not in skip:
                                    walk(child)
                    elif value.__class__ in NODE_TYPES and value.__class__ not in skip:
                        if on_attribute is not None:
                            on_attribute(node, name)
                        walk(value)
        leave(node)

    walk(root)


# ---------------------------------------------------------------- CSTVisitor drop-in

_TABLES: dict[type, tuple[dict, dict] | None] = {}


def visit(node: cst.CSTNode, visitor: cst.CSTVisitor) -> None:
    """`node.visit(visitor)` for a read-only CSTVisitor, without rebuilding the tree.

    Visitors that override `on_visit`/`on_leave` keep their overrides; visitors
    with attribute callbacks (`visit_If_orelse`) use LibCST's own traversal.
    """
    tables = _tables(type(visitor))
    if tables is None:
        node.visit(visitor)
        return
    visits, leaves = tables
    if visits is None:  # on_visit / on_leave overridden
        traverse(node, visitor.on_visit, visitor.on_leave, _attribute_hook(visitor))
        return

    def enter(n: cst.CSTNode) -> object:
        method = visits.get(n.__class__.__name__)
        return True if method is None else method(visitor, n)

    def leave(n: cst.CSTNode) -> None:
        method = leaves.get(n.__class__.__name__)
        if method is not None:
            method(visitor, n)

    traverse(node, enter, leave)


def _attribute_hook(visitor: cst.CSTVisitor):
    if type(visitor).on_visit_attribute is cst.CSTVisitor.on_visit_attribute:
        return None
    return visitor.on_visit_attribute


def _tables(visitor_type: type) -> tuple[dict, dict] | None:
    if visitor_type in _TABLES:
        return _TABLES[visitor_type]
    # Keyed by class name: LibCST's slots decorator leaves a second class object per name.
    names = {t.__name__ for t in NODE_TYPES}
    visits: dict | None = {}
    leaves: dict = {}
    result: tuple | None
    for attr in dir(visitor_type):
        for prefix, table in (("visit_", visits), ("leave_", leaves)):
            method = getattr(visitor_type, attr, None)
            if method is getattr(cst.CSTVisitor, attr, None):
                continue  # CSTVisitor's own no-op `visit_<Node>_<attr>` stubs
            if attr.startswith(prefix) and callable(method):
                suffix = attr[len(prefix) :]
                if suffix in names:
                    table[suffix] = getattr(visitor_type, attr)  # type: ignore[index]
                elif "_" in suffix and suffix.split("_")[0] in names:
                    _TABLES[visitor_type] = None  # attribute visitor: not supported here
                    return None
    overrides = any(
        getattr(visitor_type, hook) is not getattr(cst.CSTVisitor, hook)
        for hook in ("on_visit", "on_leave")
    )
    result = (None, leaves) if overrides else (visits, leaves)  # type: ignore[assignment]
    _TABLES[visitor_type] = result  # type: ignore[assignment]
    return result


def find_all(root: cst.CSTNode, node_type: type) -> list:
    """Every node of `node_type` in root's subtree (root included), in source order."""
    found: list = []

    def enter(node: cst.CSTNode) -> None:
        if isinstance(node, node_type):
            found.append(node)

    traverse(root, enter, _ignore, skip=TRIVIA - {node_type})
    return found


def _ignore(node: cst.CSTNode) -> None:
    return None
