"""Imports flow one way: no circle among risk_app, pipelines and data_contracts, and no
import inside a function without a reason.

The import graph is read from the source with `ast` (nothing is imported, so it takes a
fraction of a second): an edge A -> B for every `import`/`from ... import` in A that names
module B of these packages, wherever it stands, inside functions included: an import moved
into a function to dodge a circle is still an arrow. Imports under `if TYPE_CHECKING:` are
left out (they never run). `from pkg import name` is an arrow to `pkg.name` when that is a
module, else to `pkg` (name is something its `__init__` defines). Importing `a.b.c` runs the
`__init__` of `a` and `a.b` first, so those are arrows too, except packages that contain the
importing module (Python has begun them before it): a module importing `scoring.batch` runs
`scoring/__init__.py` and whatever that imports.

An import inside a function is allowed for a heavy optional library or a CLI's start-up
time, and it says so: a comment on its own line, or on the line above it (above its group,
when several imports stand together). A pragma alone (`# noqa`, `# type: ignore`) is no reason.
See STYLE.md, "Imports that flow one way".

    python tests/test_import_graph.py [ROOT]    # print the circles and unexplained imports of ROOT
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("risk_app", "pipelines", "data_contracts")
PRAGMAS = ("noqa", "type:", "fmt:", "pragma", "pyright:", "mypy:")


@dataclass(frozen=True)
class ImportSite:
    """One import statement: in which module, at which lines, of which modules, in a function or not."""

    module: str
    path: Path
    line: int
    end_line: int
    targets: tuple[str, ...]  # modules of PACKAGES it names
    in_function: bool


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of PACKAGES under `root`."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of `name` that is one of our modules (an attribute's module)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: from the module's package, up `level - 1` packages
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([base] if base else []))
    # `from pkg import name`: the module pkg.name, else pkg itself (name is an attribute of its
    # __init__); `_with_packages` adds the packages above.
    return [f"{base}.{alias.name}" for alias in node.names]


def _with_packages(target: str, module: str) -> set[str]:
    """`target` and the packages above it that importing it runs, less those `module` is in."""
    parts = target.split(".")
    own = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
    return {target} | {".".join(parts[:i]) for i in range(1, len(parts))} - own


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def import_sites(root: Path) -> list[ImportSite]:
    """Every import statement of PACKAGES under `root` that names one of their modules, or that
    stands inside a function (whatever it imports); `if TYPE_CHECKING:` blocks left out."""
    modules = module_files(root)
    sites: list[ImportSite] = []
    for module, path in modules.items():
        is_package = path.name == "__init__.py"

        def visit(node: ast.AST, in_function: bool, module: str = module, path: Path = path,
                  is_package: bool = is_package) -> None:  # fmt: skip
            for child in ast.iter_child_nodes(node):
                if _is_type_checking(child):
                    continue
                inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                if isinstance(child, ast.Import | ast.ImportFrom):
                    resolved = {_resolve(n, modules) for n in _names(child, module, is_package)}
                    found = {p for t in resolved if t is not None for p in _with_packages(t, module)}
                    targets = tuple(sorted(t for t in found if t in modules and t != module))
                    if targets or inside:
                        end = child.end_lineno or child.lineno
                        sites.append(ImportSite(module, path, child.lineno, end, targets, inside))
                visit(child, inside)

        visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), False)
    return sites


def import_graph(sites: list[ImportSite]) -> dict[str, dict[str, ImportSite]]:
    """module -> {imported module: the first statement that imports it}."""
    graph: dict[str, dict[str, ImportSite]] = defaultdict(dict)
    for site in sites:
        for target in site.targets:
            graph[site.module].setdefault(target, site)
    return graph


def strongly_connected(graph: dict[str, dict[str, ImportSite]]) -> list[list[str]]:
    """Components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    nodes = sorted(set(graph) | {t for targets in graph.values() for t in targets})
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, {}))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def one_cycle(graph: dict[str, dict[str, ImportSite]], component: list[str]) -> list[ImportSite]:
    """The statements of one shortest circle through the component's first module."""
    members, start = set(component), component[0]
    came_from: dict[str, ImportSite] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target, site in sorted(graph.get(node, {}).items()):
            if target not in members:
                continue
            if target == start:
                path = [site]
                while path[0].module != start:
                    path.insert(0, came_from[path[0].module])
                return path
            if target not in came_from:
                came_from[target] = site
                queue.append(target)
    return []


def circle_report(root: Path) -> list[str]:
    """One paragraph per import circle: its modules and one circle, arrow by arrow."""
    graph = import_graph(import_sites(root))
    report = []
    for component in strongly_connected(graph):
        arrows = "\n".join(
            f"    {s.module} -> {next(t for t in s.targets if t in component)}   "
            f"({s.path.relative_to(root)}:{s.line}{', inside a function' if s.in_function else ''})"
            for s in one_cycle(graph, component)
        )
        report.append(f"{len(component)} modules import each other: {', '.join(component)}\n{arrows}")
    return report


def _reason(line: str) -> bool:
    """Does this source line carry a comment that is more than a pragma?"""
    if "#" not in line:
        return False
    comment = line.split("#", 1)[1].strip().lower()
    return bool(comment) and not comment.startswith(PRAGMAS)


def unexplained_function_imports(root: Path) -> list[str]:
    """Imports inside functions with no reason comment on their line or above their group."""
    sites = [s for s in import_sites(root) if s.in_function]
    import_lines = {(s.path, n) for s in sites for n in range(s.line, s.end_line + 1)}
    sources: dict[Path, list[str]] = {}
    problems = []
    for site in sites:
        lines = sources.setdefault(site.path, site.path.read_text(encoding="utf-8").splitlines())
        if any(_reason(lines[n - 1]) for n in range(site.line, site.end_line + 1)):
            continue
        above = site.line - 1
        # Up over the group: the other imports beside it and the blank lines between them.
        while above >= 1 and ((site.path, above) in import_lines or not lines[above - 1].strip()):
            above -= 1
        if above >= 1 and lines[above - 1].strip().startswith("#") and _reason(lines[above - 1]):
            continue
        where = f"{site.path.relative_to(root)}:{site.line}"
        problems.append(f"{where}: `{lines[site.line - 1].strip()}` inside a function, with no reason given")
    return problems


def test_no_import_circles() -> None:
    circles = circle_report(REPO_ROOT)
    assert not circles, (
        "import circles (a lower module looks the higher one up in a registry the higher one "
        "fills, or a module holding two jobs is split; STYLE.md):\n\n" + "\n\n".join(circles)
    )


def test_imports_inside_functions_say_why() -> None:
    problems = unexplained_function_imports(REPO_ROOT)
    assert not problems, (
        "an import inside a function is for a heavy optional library or CLI start-up time, with "
        "a one-line comment saying which; otherwise it belongs at the top:\n" + "\n".join(problems)
    )


def test_the_checks_see_a_circle_and_an_unexplained_import(tmp_path: Path) -> None:
    """The two checks above would fail on a circle hidden in a function and on a bare import."""
    package = tmp_path / "risk_app"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("")
    (package / "low" / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from risk_app import c\n\n"
        "def f():\n    from risk_app.high import b\n    return b\n"
    )
    (package / "high.py").write_text("from .low import a\n")
    (package / "c.py").write_text(
        "import risk_app.low.a\n\ndef g():\n    # a heavy optional library\n    import json\n"
        "    import os\n\n    import re\n    return json, os, re\n\n"
        "def h():\n    import sys  # noqa: PLC0415\n    return sys\n"
    )
    # A circle through a package's __init__: importing pkg.leaf runs pkg/__init__.py, which
    # imports user; pkg.leaf importing its sibling pkg.other runs no __init__ of its own package.
    (package / "pkg").mkdir()
    (package / "pkg" / "__init__.py").write_text("from risk_app import user\n")
    (package / "pkg" / "leaf.py").write_text("from risk_app.pkg import other\n")
    (package / "pkg" / "other.py").write_text("")
    (package / "user.py").write_text("from risk_app.pkg.leaf import other\n")
    circles = circle_report(tmp_path)
    assert len(circles) == 2, circles
    [hidden] = [c for c in circles if "risk_app.high, risk_app.low.a" in c]
    assert "inside a function" in hidden  # the arrow that hid in f
    assert "risk_app.c" not in hidden  # a TYPE_CHECKING import is no arrow
    [through_init] = [c for c in circles if c is not hidden]
    assert through_init.startswith("2 modules import each other: risk_app.pkg, risk_app.user")
    problems = unexplained_function_imports(tmp_path)
    # f's hidden import, and h's whose only comment is a pragma
    assert sorted(p.split(": ")[0] for p in problems) == ["risk_app/c.py:12", "risk_app/low/a.py:6"]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_ROOT
    found_circles = circle_report(target)
    found_imports = unexplained_function_imports(target)
    print(f"{len(found_circles)} import circle(s)", *found_circles, sep="\n\n")
    print(f"\n{len(found_imports)} import(s) inside functions without a reason", *found_imports, sep="\n")
    sys.exit(1 if found_circles or found_imports else 0)
