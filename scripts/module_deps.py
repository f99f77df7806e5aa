#!/usr/bin/env python3
"""Which top-level module imports which, per crate (`use crate::x` outside tests and comments),
and the import circles among them. `--check` exits 1 if any crate has a circle (CI runs it)."""
import collections
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def module_of(src: pathlib.Path, path: pathlib.Path) -> str:
    parts = path.relative_to(src).with_suffix("").parts
    return "lib" if parts in (("lib",), ("main",)) else parts[0]


def graph_of(src: pathlib.Path) -> dict:
    graph = collections.defaultdict(set)
    for path in sorted(src.rglob("*.rs")):
        me = module_of(src, path)
        text = path.read_text().split("#[cfg(test)]")[0]
        text = re.sub(r"//[^\n]*", "", text)
        targets = set(re.findall(r"\bcrate::([a-z_]\w*)", text))
        for group in re.findall(r"use crate::\{([^}]*)\}", text, re.S):
            targets |= set(re.findall(r"(?:^|,)\s*([a-z_]\w*)", group))
        graph[me] |= {t for t in targets if t != me}
    return graph


def circles(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(set(graph) | {t for ts in graph.values() for t in ts}):
        if v not in index:
            visit(v)
    return found


def main() -> int:
    check = "--check" in sys.argv
    failed = False
    for src in sorted(ROOT.glob("crates/*/src")):
        graph = graph_of(src)
        found = circles(graph)
        failed |= bool(found)
        if not check:
            print(f"{src.parent.name}:")
            for module in sorted(graph):
                if graph[module]:
                    print(f"  {module} -> {', '.join(sorted(graph[module]))}")
        if found or not check:
            print(f"  circles in {src.parent.name}: {found or 'none'}")
    return 1 if failed and check else 0


if __name__ == "__main__":
    sys.exit(main())
