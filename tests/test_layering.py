"""The package's layers, checked from the source: no import cycles inside edge_lsh/, and no
module imports one from a higher layer (imports inside functions and under TYPE_CHECKING
count too). A new module must be given its layer here."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "edge_lsh"

# lowest first; a module may import only from its own layer or lower ones
LAYERS: list[tuple[str, ...]] = [
    ("edge_lsh._version", "edge_lsh.errors", "edge_lsh.fileio", "edge_lsh._build"),
    ("edge_lsh.oracle.*", "edge_lsh.data", "edge_lsh.report"),
    ("edge_lsh.format.*",),
    ("edge_lsh.native",),
    ("edge_lsh.network", "edge_lsh.fixed"),
    ("edge_lsh.defaults", "edge_lsh.quantize", "edge_lsh.finetune"),
    ("edge_lsh.interop.*",),
    ("edge_lsh.deploy.*",),
    ("edge_lsh.energy.*",),
    ("edge_lsh.cli.*",),
    ("edge_lsh",),  # the package's __init__: the public API, re-exported
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    for rank, patterns in enumerate(LAYERS):
        for pat in patterns:
            if module == pat.removesuffix(".*") or (
                pat.endswith(".*") and module.startswith(pat[:-1])
            ):
                return rank
    raise AssertionError(f"{module} has no layer in tests/test_layering.py: give it one")


def imports_of(path: Path, module: str) -> set[str]:
    """Every edge_lsh module the file imports, anywhere in it."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    modules = {module_name(p) for p in PKG.rglob("*.py")}
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:  # `from edge_lsh.cli import train` imports the module train
                sub = f"{target}.{a.name}"
                found.add(sub if sub in modules else target)

    return {m for m in found if m in modules and m != module}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p, module_name(p)) for p in PKG.rglob("*.py")}


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph (its modules, the first repeated last), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(g.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(g):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_cycles() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_lower_layers_never_import_upper_ones() -> None:
    bad = [
        f"{m} (layer {layer_of(m)}) imports {n} (layer {layer_of(n)})"
        for m, deps in sorted(graph().items())
        for n in sorted(deps)
        if layer_of(n) > layer_of(m)
    ]
    assert not bad, "\n".join(bad)


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """Neither check is vacuous: a cycle is found, and imports are read from the source."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    f = tmp_path / "x.py"
    f.write_text("def late():\n    from edge_lsh.cli import train\n")
    assert imports_of(f, "edge_lsh.x") == {"edge_lsh.cli.train"}
    assert layer_of("edge_lsh.cli.train") > layer_of("edge_lsh.network")
