"""The pipeline reads off the folders: no module imports from a stage above its own, and no import circle.

    spec < record < gate, measure < execute, report < the CLI (harness/cli.py, harness/terminal.py)

``harness.errors`` is below every stage. gate and measure are side by side and do not import each other;
report reads records, the gate's conclusions and measure's torch-free trace analysis, never execute.
"""

import ast
from pathlib import Path

HARNESS = Path(__file__).resolve().parent.parent.parent / "harness"
RANK = {"errors": 0, "spec": 1, "record": 2, "gate": 3, "measure": 3, "execute": 4, "report": 4, "cli": 5,
        "terminal": 5, "__init__": 0}
SIDE_BY_SIDE = {("gate", "measure"), ("measure", "gate"), ("execute", "report"), ("report", "execute")}


def stage_of(module: str) -> str:
    parts = module.split(".")
    stage = parts[1] if len(parts) > 1 else "__init__"
    return "cli" if stage == "terminal" else stage  # the CLI's terminal helpers sit beside it


def _module_level(tree: ast.Module):
    """The import statements run when the module is imported: its body, not its functions' bodies (a lazy
    import runs later and cannot close a circle at import time), nor ``if TYPE_CHECKING:`` blocks."""
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.Try):
            yield from (n for n in node.body if isinstance(n, (ast.Import, ast.ImportFrom)))


def imports(at_import_time: bool = False) -> dict[str, set[str]]:
    """Module -> the harness modules it imports: every import, or (``at_import_time``) the module-level ones."""
    graph: dict[str, set[str]] = {}
    for path in HARNESS.rglob("*.py"):
        relative = path.relative_to(HARNESS.parent).with_suffix("")
        name = ".".join(relative.parts).removesuffix(".__init__")
        found = set()
        tree = ast.parse(path.read_text(), str(path))
        for node in (_module_level(tree) if at_import_time else ast.walk(tree)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness"):
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names if alias.name.startswith("harness"))
        graph[name] = found
    modules = set(graph)
    return {name: {target for target in found if target in modules and target != name}
            for name, found in graph.items()}


def test_every_harness_module_is_in_a_stage_folder():
    top = sorted(p.stem for p in HARNESS.glob("*.py"))
    assert top == ["__init__", "cli", "errors", "terminal"], top


def test_no_module_imports_from_a_stage_above_its_own():
    wrong = []
    for name, targets in imports().items():
        mine = stage_of(name)
        for target in targets:
            theirs = stage_of(target)
            if theirs == mine:
                continue
            if (mine, theirs) in SIDE_BY_SIDE or RANK[theirs] >= RANK[mine]:
                wrong.append(f"{name} ({mine}) imports {target} ({theirs})")
    assert not wrong, "\n".join(sorted(wrong))


def test_the_import_graph_has_no_circle():
    graph = imports(at_import_time=True)
    state: dict[str, int] = {}
    circles = []

    def visit(node, trail):
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                circles.append(" -> ".join(trail[trail.index(target):] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, "\n".join(circles)
