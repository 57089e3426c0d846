"""The shape of the package, for refactoring notes: module and function sizes, and the import graph
(its levels and its cycles, imports inside functions included).

    .venv/bin/python benchmarks/code_shape.py [--src src/charrnn] [--longest 10]
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(tree: ast.Module, name: str, is_package: bool, known: set[str]) -> tuple[set[str], set[str]]:
    """(modules imported at the top, modules imported inside functions) among `known`."""
    top, inner = set(), set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        found = {t for t in targets if t in known and t != name}
        (top if node.col_offset == 0 else inner).update(found)
    return top, inner


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
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

    for v in graph:
        if v not in index:
            visit(v)
    return found


def levels(graph: dict[str, set[str]]) -> dict[str, int]:
    """Each module's level: 0 for one importing nothing of the package, else 1 + its deepest import's."""
    memo: dict[str, int] = {}

    def level(v, seen=()):
        if v in memo:
            return memo[v]
        if v in seen:
            return 0
        memo[v] = 1 + max((level(w, (*seen, v)) for w in graph.get(v, ())), default=-1)
        return memo[v]

    return {v: level(v) for v in graph}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", default=str(Path(__file__).resolve().parents[1] / "src" / "charrnn"))
    parser.add_argument("--longest", type=int, default=10)
    args = parser.parse_args()
    root = Path(args.src)
    files = sorted(root.rglob("*.py"))
    known = {module_name(f, root) for f in files}
    trees = {module_name(f, root): (f, ast.parse(f.read_text())) for f in files}
    graph, inner_edges, functions = {}, [], []
    for name, (path, tree) in trees.items():
        top, inner = imports_of(tree, name, path.name == "__init__.py", known)
        graph[name] = top | inner
        inner_edges += [f"{name} -> {t}" for t in sorted(inner - top)]
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions.append((node.end_lineno - node.lineno + 1, f"{name}.{node.name}"))
    sizes = sorted(((len(p.read_text().splitlines()), n) for n, (p, _) in trees.items()), reverse=True)
    print(f"{len(sizes)} modules, {sum(s for s, _ in sizes):,} lines; the largest:")
    for size, name in sizes[: args.longest]:
        print(f"  {size:5d}  {name}")
    functions.sort(reverse=True)
    print(f"functions over 70 lines: {sum(1 for s, _ in functions if s > 70)}; the longest:")
    for size, name in functions[: args.longest]:
        print(f"  {size:5d}  {name}")
    no_init = {k: {w for w in v if trees[w][0].name != "__init__.py"} for k, v in graph.items()}
    depth = levels(no_init)
    print(
        f"import levels (imports inside functions included, the package's __init__ left out): {max(depth.values()) + 1}"
    )
    print(f"imports inside functions: {len(inner_edges)}")
    for edge in inner_edges:
        print(f"  {edge}")
    found = cycles(no_init)
    print(f"import cycles: {len(found)}")
    for component in found:
        print("  " + " <-> ".join(component))


if __name__ == "__main__":
    main()
