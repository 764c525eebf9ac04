"""The package's shape: module and function sizes, import layers and cycles.

These tests read the source tree (``ast``), so they run in well under a
second.  They guard the rules of ``docs/developer.rst``: the layers of
``design.md`` section 2 (lazy imports inside functions count), no import
cycle, no module over 800 lines, no function body over 80 lines, no private
name imported across modules by the entry points (``hear.py``, ``cli/``), and
the default rho written in one file.
"""

import ast
import collections
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sklearn_rfcnn"
MAX_MODULE_LINES = 800
MAX_FUNCTION_BODY = 80

#: What each top-level part of the package may import from the others
#: (design.md, section 2; foundations: exceptions, _version, utils).
BASE = {"exceptions", "_version", "utils"}
ALLOWED = {
    "exceptions": set(),
    "_version": set(),
    "utils": {"exceptions"},
    "receptive_field": BASE,
    "models": BASE | {"receptive_field"},
    "transformers": BASE | {"receptive_field"},
    "metrics": BASE,
    "datasets": BASE | {"receptive_field"},
    "_model_card": BASE | {"receptive_field"},
    "estimators": BASE | {"receptive_field", "models", "_model_card"},
    "search": BASE
    | {"receptive_field", "models", "transformers", "estimators", "datasets"}
    | {"metrics"},
    "inspection": BASE | {"receptive_field", "transformers", "estimators"},
    "_pipeline_io": BASE
    | {"receptive_field", "transformers", "estimators", "inspection", "_model_card"},
    "plotting": BASE | {"receptive_field", "metrics"},
    "hear": BASE
    | {"receptive_field", "models", "transformers", "estimators", "_pipeline_io"},
    "cli": BASE
    | {"receptive_field", "models", "transformers", "estimators", "search"}
    | {"datasets", "metrics", "inspection", "_pipeline_io", "plotting"}
    | {"_model_card", "<package>"},
    "__main__": {"cli"},
    "<package>": BASE,
}


def _modules():
    mods = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


MODULES = _modules()
TREES = {name: ast.parse(path.read_text()) for name, path in MODULES.items()}


def _imports(name):
    """``(line, target module, imported names)`` of every package import."""
    is_pkg = MODULES[name].name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
            continue
        else:
            continue
        yield node.lineno, target, names


def _graph():
    """Edges between package modules (``from pkg import submodule`` included)."""
    graph = collections.defaultdict(set)
    for name in MODULES:
        for _, target, names in _imports(name):
            if not target.startswith("sklearn_rfcnn"):
                continue
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            # importing a submodule through its package is an edge to the
            # submodule; anything else imported from a package runs __init__
            if len(subs) < len(names) or not names:
                subs.append(target)
            graph[name].update(s for s in subs if s in MODULES and s != name)
    return graph


def _part(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<package>"


def _cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    graph = collections.defaultdict(set, graph)
    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def _function_bodies():
    for name, tree in TREES.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            body = node.body
            if (
                isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                body = body[1:]
            if body:
                yield name, node, node.end_lineno - body[0].lineno + 1


def test_no_module_over_800_lines():
    sizes = {n: len(p.read_text().splitlines()) for n, p in MODULES.items()}
    over = {n: s for n, s in sizes.items() if s > MAX_MODULE_LINES}
    assert not over, f"split by concern (docs/developer.rst): {over}"


def test_no_function_body_over_80_lines():
    over = [
        f"{name}:{node.lineno} {node.name} ({length} lines)"
        for name, node, length in _function_bodies()
        if length > MAX_FUNCTION_BODY
    ]
    assert not over, "extract well-named steps: " + "; ".join(over)


def test_no_import_cycle():
    assert _cycles(_graph()) == []


def test_imports_flow_down_the_layers():
    upward = []
    for name, targets in _graph().items():
        src = _part(name)
        for target in targets:
            dst = _part(target)
            if dst != src and dst not in ALLOWED[src]:
                upward.append(f"{name} -> {target}")
    assert not upward, "imports up a layer of design.md section 2: " + "; ".join(
        sorted(upward)
    )


def test_every_part_of_the_package_has_a_layer():
    assert {_part(n) for n in MODULES} <= set(ALLOWED)


@pytest.mark.parametrize(
    "module", [n for n in MODULES if _part(n) in ("hear", "cli", "__main__")]
)
def test_entry_points_import_no_private_name(module):
    private = [
        f"line {line}: {name} from {target}"
        for line, target, names in _imports(module)
        if target.startswith("sklearn_rfcnn")
        for name in names
        if name.startswith("_")
        and not name.startswith("__")
        and f"{target}.{name}" not in MODULES
    ]
    assert not private, f"{module} imports private names: {private}"


def _rho_default_literals(name, tree):
    """Integer defaults of rho parameters and integer constants named *RHO*."""
    rho_args = {"rho", "rho_f", "rho_t"}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            positional = args.posonlyargs + args.args
            pairs = list(
                zip(positional[len(positional) - len(args.defaults) :], args.defaults)
            )
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d]
            for arg, default in pairs:
                if (
                    arg.arg in rho_args
                    and isinstance(default, ast.Constant)
                    and (isinstance(default.value, int))
                ):
                    yield f"{name}:{node.lineno} {node.name}({arg.arg}={default.value})"
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if (
                    isinstance(target, ast.Name)
                    and "RHO" in target.id
                    and isinstance(node.value.value, int)
                ):
                    yield f"{name}:{node.lineno} {target.id} = {node.value.value}"


def test_the_default_rho_is_written_in_one_file():
    hits = [
        h for name, tree in TREES.items() for h in _rho_default_literals(name, tree)
    ]
    assert {h.split(":")[0] for h in hits} == {"sklearn_rfcnn.receptive_field"}, hits


def test_the_checks_catch_what_they_guard():
    # the checks themselves: a cycle, an upward import and a long body are seen
    assert _cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b"]]
    src = "def f():\n    '''doc'''\n" + "    x = 1\n" * 81
    tree = ast.parse(src)
    node = tree.body[0]
    assert node.end_lineno - node.body[1].lineno + 1 == 81
    assert "estimators" not in ALLOWED["models"]
    bad = ast.parse("def f(x, rho=5):\n    pass\nMY_RHO = 7\n")
    assert len(list(_rho_default_literals("m", bad))) == 2
