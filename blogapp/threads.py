"""A post's discussion as readers see it: the visible comments arranged into a tree."""
from __future__ import annotations

from dataclasses import dataclass, field

from .models import Comment, CommentStatus


@dataclass
class ThreadNode:
    comment: Comment
    depth: int
    children: list[ThreadNode] = field(default_factory=list)


def count_label(count: int) -> str:
    """The thread heading, as WordPress words it."""
    if count == 0:
        return "No Comments"
    if count == 1:
        return "One Comment"
    return f"{count} Comments"


def build_thread(comments: list[Comment], max_depth: int) -> list[ThreadNode]:
    """Arrange ``comments`` (oldest first) into nested nodes.

    A reply whose parent is not visible is shown at the top level, so a moderated
    parent never hides an approved reply. Replies below ``max_depth`` are shown at
    that depth, in order, rather than indented further.
    """
    max_depth = max(1, int(max_depth))
    by_id = {c.id: c for c in comments}
    children: dict[int | None, list[Comment]] = {}
    for c in comments:
        parent = c.parent_id if c.parent_id in by_id and c.parent_id != c.id else None
        children.setdefault(parent, []).append(c)

    def attach(comment: Comment, depth: int, into: list[ThreadNode], seen: set[int]) -> None:
        if comment.id in seen:  # a loop in bad data must not recurse forever
            return
        seen.add(comment.id)
        node = ThreadNode(comment, depth)
        into.append(node)
        # At the depth limit, the replies become siblings of this node instead of children.
        target, child_depth = (node.children, depth + 1) if depth < max_depth else (into, depth)
        for child in children.get(comment.id, []):
            attach(child, child_depth, target, seen)

    roots: list[ThreadNode] = []
    seen: set[int] = set()
    for comment in children.get(None, []):
        attach(comment, 1, roots, seen)
    return roots


def walk(roots: list[ThreadNode]) -> list[tuple[str, ThreadNode]]:
    """The thread as one flat sequence, ("open", node) ... ("close", node), in page order, so the
    template renders it in one loop instead of one macro call per comment."""
    steps: list[tuple[str, ThreadNode]] = []
    stack: list[tuple[ThreadNode, bool]] = [(node, False) for node in reversed(roots)]
    while stack:
        node, opened = stack.pop()
        if opened:
            steps.append(("close", node))
            continue
        steps.append(("open", node))
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(node.children))
    return steps


def public_count(comments: list[Comment]) -> int:
    return sum(1 for c in comments if c.status == CommentStatus.APPROVED)
