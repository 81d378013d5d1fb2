"""Line and column of the few nodes a file reports.

libcst's PositionProvider records a range for every node of the module and costs over twice
the parse. sessionlint only needs positions in files that have findings, and only for the
nodes it names, so it renders the module once with a codegen state that notes the token
index where each wanted node starts and ends, then turns those indices into lines and columns.
A plain render costs about a quarter of the parse.
"""

from contextlib import contextmanager
from typing import Dict, Iterable, Iterator, List, Optional, Set, Tuple

import libcst as cst
from libcst._nodes.internal import CodegenState

# (line, column): 1-based line, 0-based column, as libcst counts them.
Point = Tuple[int, int]


class _MarkingState(CodegenState):
    """Codegen that records token indices for wanted nodes only."""

    __slots__ = ("wanted", "marks")

    def __init__(self, module: cst.Module, wanted: Set[int]) -> None:
        super().__init__(default_indent=module.default_indent, default_newline=module.default_newline)
        self.wanted = wanted
        self.marks: Dict[int, List[int]] = {}

    @contextmanager
    def record_syntactic_position(
        self,
        node: cst.CSTNode,
        *,
        start_node: Optional[cst.CSTNode] = None,
        end_node: Optional[cst.CSTNode] = None,
    ) -> Iterator[None]:
        key = id(node)
        if key not in self.wanted:
            yield
            return
        # A node whose syntactic start or end is hoisted from a child (e.g. a statement's
        # start from its first token) needs that child marked as well.
        if start_node is not None:
            self.wanted.add(id(start_node))
        if end_node is not None:
            self.wanted.add(id(end_node))
        start = len(self.tokens)
        try:
            yield
        finally:
            end = len(self.tokens)
            if start_node is not None and id(start_node) in self.marks:
                start = self.marks[id(start_node)][0]
            if end_node is not None and id(end_node) in self.marks:
                end = self.marks[id(end_node)][1]
            self.marks[key] = [start, end]


class Positions:
    """Start and end points of chosen nodes of one module, computed on first request."""

    def __init__(self, module: cst.Module) -> None:
        self._module = module
        self._points: Dict[int, Tuple[Point, Point]] = {}

    def resolve(self, nodes: Iterable[cst.CSTNode]) -> None:
        """Compute positions for `nodes` (one render of the module for the whole batch)."""
        wanted = {id(n) for n in nodes if id(n) not in self._points}
        if not wanted:
            return
        state = _MarkingState(self._module, set(wanted))
        module = self._module
        if id(module) in wanted:
            module._codegen(state)
        else:
            # Render statement by statement up to the last one holding a wanted node: the
            # tokens after it cannot move anything before it (a finding near the top of a
            # long module costs a fraction of a full render).
            for header in module.header:
                header._codegen(state)
            for statement in module.body:
                statement._codegen(state)
                if all(key in state.marks for key in wanted):
                    break
        tokens = state.tokens
        # Token index -> (line, column), walking the tokens once.
        needed = sorted({i for start_end in state.marks.values() for i in start_end})
        at: Dict[int, Point] = {}
        line, column, index = 1, 0, 0
        for target in needed:
            while index < target:
                text = tokens[index]
                newlines = text.count("\n") + text.count("\r") - text.count("\r\n")
                if newlines:
                    line += newlines
                    column = len(text) - max(text.rfind("\n"), text.rfind("\r")) - 1
                else:
                    column += len(text)
                index += 1
            at[target] = (line, column)
        for key in wanted:
            mark = state.marks.get(key)
            if mark is not None:
                self._points[key] = (at[mark[0]], at[mark[1]])

    def span(self, node: cst.CSTNode) -> Tuple[Point, Point]:
        """(start, end) of `node`; resolves it alone when it was not batched beforehand."""
        points = self._points.get(id(node))
        if points is None:
            self.resolve([node])
            points = self._points.get(id(node), ((1, 0), (1, 0)))
        return points

    def line(self, node: cst.CSTNode) -> int:
        return self.span(node)[0][0]
