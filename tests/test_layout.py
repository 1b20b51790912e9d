"""The tree is the map: every name lives in one module, notebooks import it from there, and the
layout page (``docs/layout.md``, linked from the README) and its lesson map agree with the tree.

The measurements (``facade_names``, ``duplicate_names``, ``notebook_references``) are plain
functions over a repository root, so they can also be run on an older checkout to compare.
"""

from __future__ import annotations

import ast
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Package __init__ files that offer a documented surface (``kdtutor.checks.<exercise>``).
SURFACES = {"kdtutor.checks"}


# --------------------------------------------------------------------------- reading the package
def modules(root: Path = ROOT) -> dict[str, Path]:
    """``{"kdtutor.images.train": path}`` for every module and package ``__init__`` of kdtutor."""
    out = {}
    for path in sorted((root / "kdtutor").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def definitions(tree: ast.Module) -> set[str]:
    """Names a module defines at its top level (functions, classes, assignments)."""
    out = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            out |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return out


def kdtutor_imports(module: str, path: Path, tree: ast.Module) -> list[tuple[str, str, str]]:
    """``(bound name, source module, imported name)`` for every ``from kdtutor… import`` in the module."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            src = _absolute(module, path.name == "__init__.py", node)
            if src == "kdtutor" or src.startswith("kdtutor."):
                out += [(a.asname or a.name, src, a.name) for a in node.names]
    return out


def used_names(tree: ast.Module) -> set[str]:
    """Every name the module's code reads (imports and ``__all__`` do not count)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            out.add(node.id)
    return out


# --------------------------------------------------------------------------- the measurements
def facade_names(root: Path = ROOT) -> list[str]:
    """``module:name`` for every kdtutor name a module imports and never uses (a re-export)."""
    out = []
    for module, path in modules(root).items():
        if module in SURFACES:
            continue
        tree = ast.parse(path.read_text())
        used = used_names(tree)
        out += [f"{module}:{bound}" for bound, src, name in kdtutor_imports(module, path, tree)
                if bound not in used and name != "annotations"]
    return sorted(out)


def duplicate_names(root: Path = ROOT) -> dict[str, list[str]]:
    """``{name: [modules]}`` for public top-level functions and classes defined in two modules.

    The exercise checks are left out by design: ``kdtutor.checks.flip_batch(fn)`` is named after
    the exercise it checks, which is the name of the function the learner writes (and of
    kdtutor's own version of it); the learner reaches it only as ``checks.<exercise>``."""
    where = defaultdict(list)
    for module, path in modules(root).items():
        if module.startswith("kdtutor.checks."):
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                where[node.name].append(module)
    return {name: mods for name, mods in sorted(where.items()) if len(mods) > 1}


def notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    return "\n".join(line for cell in code for line in cell.splitlines() if not line.lstrip().startswith(("!", "%")))


def notebook_bindings(tree: ast.Module, known: dict[str, Path]) -> dict[str, str]:
    """``{alias: module}`` for the kdtutor modules a notebook binds to a name."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kdtutor"):
            for a in node.names:
                if f"{node.module}.{a.name}" in known:
                    out[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name in known and a.asname:
                    out[a.asname] = a.name
    return out


def notebook_references(root: Path = ROOT) -> tuple[list[str], list[str], list[str]]:
    """``(right, wrong, surface)``: the notebooks' ``module.name`` references to kdtutor modules that
    name the module defining ``name``, those that do not, and those through a documented surface."""
    known = modules(root)
    defs = {m: definitions(ast.parse(p.read_text())) for m, p in known.items()}
    right, wrong, surface = [], [], []
    for nb in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        tree = ast.parse(notebook_code(nb))
        alias = notebook_bindings(tree, known)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in alias:
                module = alias[node.value.id]
                ref = f"{nb.name[:2]}: {node.value.id}.{node.attr} ({module})"
                submodule = f"{module}.{node.attr}" in known
                if module in SURFACES:
                    surface.append(ref)
                elif node.attr in defs[module] or submodule:
                    right.append(ref)
                else:
                    wrong.append(ref)
    return right, wrong, surface


# --------------------------------------------------------------------------- the rules
def test_no_module_imports_a_name_only_to_re_export_it():
    assert facade_names() == []


def test_no_two_modules_define_the_same_public_name():
    assert duplicate_names() == {}


def test_notebook_references_name_the_module_that_defines_them():
    right, wrong, surface = notebook_references()
    assert len(right) > 100, "the notebooks reference kdtutor modules far more often than this"
    assert wrong == [], f"{len(wrong)} of {len(right) + len(wrong)} references name the wrong module"


def test_the_measurements_can_fail(tmp_path):
    """A façade, a duplicate and a mis-pointing notebook reference are all found."""
    pkg = tmp_path / "kdtutor"
    (pkg / "images").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "images" / "__init__.py").write_text("")
    (pkg / "images" / "metrics.py").write_text("def accuracy(x):\n    return x\n")
    (pkg / "images" / "train.py").write_text("from kdtutor.images.metrics import accuracy\n\n"
                                               "def fit():\n    return 1\n")
    (pkg / "images" / "predict.py").write_text("def accuracy(y):\n    return y\n")
    (tmp_path / "notebooks").mkdir()
    code = "from kdtutor.images import train\ntrain.accuracy(1)\ntrain.fit()\n"
    (tmp_path / "notebooks" / "03_x.ipynb").write_text(json.dumps(
        {"cells": [{"cell_type": "code", "source": [code]}]}))
    assert facade_names(tmp_path) == ["kdtutor.images.train:accuracy"]
    assert duplicate_names(tmp_path) == {"accuracy": ["kdtutor.images.metrics", "kdtutor.images.predict"]}
    right, wrong, _ = notebook_references(tmp_path)
    assert (len(right), len(wrong)) == (1, 1) and "train.accuracy" in wrong[0]


# --------------------------------------------------------------------------- the layout page agrees with the tree
def _layout_page() -> str:
    """``docs/layout.md``, the README's "Layout" page (the tree, its layers and the lesson map)."""
    text = (ROOT / "docs" / "layout.md").read_text(encoding="utf-8")
    assert text.startswith("# Layout\n"), "docs/layout.md does not start with '# Layout'"
    return text


def layout_tree() -> dict[str, set[str]]:
    """``{"kdtutor.images": {"data", ...}}`` from the layout page's block: each package line reads
    ``  name/ … modules: a, b, c`` (the list may continue on the next lines)."""
    block = re.search(r"```\n(kdtutor/\n.*?)```", _layout_page(), re.S).group(1)
    out, current = {}, None
    for line in block.splitlines()[1:]:
        head = re.match(r"  (\w+)/", line)
        if line.startswith("coursetools/"):
            current = "coursetools"
        elif head:
            current = f"kdtutor.{head.group(1)}"
        elif re.match(r"  \S", line) or not line.startswith("  "):
            current = "kdtutor" if line.startswith("  ") else None
        if current and "modules:" in line:
            out[current] = set()
        if current and current in out:
            listed = line.split("modules:")[-1]
            out[current] |= set(re.findall(r"[A-Za-z_]\w*", listed))
    return out


def test_the_layout_page_lists_every_module_of_the_tree():
    tree = defaultdict(set)
    tree["coursetools"] = {p.stem for p in (ROOT / "coursetools").glob("*.py") if p.stem != "__init__"}
    for module in modules():
        package, _, name = module.rpartition(".")
        if module.count(".") >= 1 and module in {f"kdtutor.{p.name}" for p in (ROOT / "kdtutor").iterdir() if p.is_dir()}:
            continue  # a package's __init__
        tree[package or "kdtutor"].add(name)
    tree["kdtutor"].discard("kdtutor")
    assert layout_tree() == dict(tree)


def layout_lesson_map() -> dict[str, set[str]]:
    """``{"03": {"kdtutor.images.train", ...}}`` from the layout page's lesson table (modules in backticks)."""
    out = {}
    for line in _layout_page().splitlines():
        m = re.match(r"\| `(\d\d)_\w+` \|(.*)\|\s*$", line)
        if m:
            out[m.group(1)] = {f"kdtutor.{x}" for x in re.findall(r"`([\w.]+)`", m.group(2))}
    return out


NOT_TAUGHT = {"kdtutor", "kdtutor.checks", "kdtutor.profiles", "kdtutor.storage"}


def lesson_modules(nb: Path, known: dict[str, Path]) -> set[str]:
    """The kdtutor modules (not packages) a lesson imports, less those every lesson imports."""
    tree = ast.parse(notebook_code(nb))
    used = set(notebook_bindings(tree, known).values())
    for node in ast.walk(tree):
        module = getattr(node, "module", None) or ""
        if isinstance(node, ast.ImportFrom) and module in known and known[module].name != "__init__.py":
            used.add(module)
    return used - NOT_TAUGHT


def test_the_layout_pages_lesson_map_matches_what_each_lesson_imports():
    known = modules()
    lessons = layout_lesson_map()
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(lessons) == [nb.name[:2] for nb in notebooks]
    for nb in notebooks:
        assert lessons[nb.name[:2]] == lesson_modules(nb, known), f"docs/layout.md's lesson map for {nb.name} is stale"


@pytest.mark.parametrize("package", ["kd", "images", "lm", "figures", "scale"])
def test_lower_layers_never_import_the_course_tools(package):
    """Data flows one way: the course tools sit on top and nothing below imports them."""
    for module, path in modules().items():
        if module.startswith(f"kdtutor.{package}"):
            srcs = {src for _, src, _ in kdtutor_imports(module, path, ast.parse(path.read_text()))}
            assert not any(s.startswith("coursetools") for s in srcs), module


# --------------------------------------------------------------------------- layers: who may import whom
# Every subpackage and top-level module of kdtutor ("unit"), and coursetools on top, bottom to top. A unit
# may import only units below it: data flows one way and there is no cycle. A new unit goes into this list
# (the test says so), and the layout page (docs/layout.md) names the same order.
LAYERS = [
    ("kdtutor",),                       # the package's __init__: CPU settings
    ("storage",),                       # paths, atomic and checksummed files
    ("fingerprint",),                   # the one hasher: tensors, models, data, code
    ("precision", "profiles"),          # device and dtype; run sizes
    ("checkpoints",),                   # saving and resuming models
    ("kd",),                            # the maths every lesson shares
    ("evalcache",),                     # results keyed by the content that made them
    ("scale",),                         # torchrun / DDP glue the training loop runs under
    ("images",),                        # lessons 03-06 (and 08)
    ("lm",),                            # lesson 07 (uses images' model registry and training helpers)
    ("figures", "checks"),              # figures, exercise checks
    ("widgets",),                       # sliders over the figures
    ("machine",),                       # the learner's install, environment check, working copies
    ("__main__",),                      # the learner's command line
    ("coursetools",),                   # course tooling: never imported by kdtutor
]


def unit_of(module: str) -> str:
    """``kdtutor.images.train`` → ``images``; ``kdtutor`` → ``kdtutor``; ``coursetools.grading`` → ``coursetools``."""
    parts = module.split(".")
    return "coursetools" if parts[0] == "coursetools" else (parts[1] if len(parts) > 1 else "kdtutor")


def unit_imports(root: Path = ROOT) -> set[tuple[str, str, str, str]]:
    """``(unit, imported unit, module, imported module)`` for every import between two units of kdtutor
    and coursetools (module-level or inside a function alike)."""
    paths = {**modules(root), **{f"coursetools.{p.stem}" if p.stem != "__init__" else "coursetools": p
                                 for p in sorted((root / "coursetools").glob("*.py"))}}
    out = set()
    for module, path in paths.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                src = _absolute(module, path.name == "__init__.py", node)
                names = [src] + [f"{src}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] not in ("kdtutor", "coursetools") or name not in paths:
                    continue
                if unit_of(name) != unit_of(module):
                    out.add((unit_of(module), unit_of(name), module, name))
    return out


def layer_violations(root: Path = ROOT, layers=LAYERS) -> list[str]:
    rank = {unit: i for i, group in enumerate(layers) for unit in group}
    return sorted(f"{m} imports {n}: {u} is not above {v}" for u, v, m, n in unit_imports(root)
                  if rank.get(u, -1) <= rank.get(v, len(layers)))


def test_every_unit_has_a_layer():
    units = {unit_of(m) for m in modules()} | {"coursetools"}
    placed = [u for group in LAYERS for u in group]
    assert len(placed) == len(set(placed)), "a unit is in two layers"
    assert units == set(placed), f"place these in LAYERS: {sorted(units - set(placed))}; gone: {sorted(set(placed) - units)}"


def test_every_import_points_down_the_layers():
    assert layer_violations() == []


def test_the_layer_check_catches_an_upward_import_and_a_cycle(tmp_path):
    (tmp_path / "kdtutor" / "kd").mkdir(parents=True)
    (tmp_path / "kdtutor" / "images").mkdir()
    (tmp_path / "coursetools").mkdir()
    for init in ("kdtutor", "kdtutor/kd", "kdtutor/images", "coursetools"):
        (tmp_path / init / "__init__.py").write_text("")
    (tmp_path / "kdtutor" / "kd" / "losses.py").write_text("from kdtutor.images import train\n")
    (tmp_path / "kdtutor" / "images" / "train.py").write_text("def f():\n    from kdtutor.kd import losses\n")
    (tmp_path / "kdtutor" / "storage.py").write_text("import coursetools.grading\n")
    (tmp_path / "coursetools" / "grading.py").write_text("from kdtutor.images.train import f\n")
    assert layer_violations(tmp_path) == [
        "kdtutor.kd.losses imports kdtutor.images.train: kd is not above images",
        "kdtutor.kd.losses imports kdtutor.images: kd is not above images",
        "kdtutor.storage imports coursetools.grading: storage is not above coursetools"]


def test_the_layout_page_names_the_layers_in_order():
    line = re.search(r"^Layers, bottom to top: (.+)$", _layout_page(), re.M)
    assert line, "docs/layout.md has no 'Layers, bottom to top: …' line"
    assert line.group(1).rstrip(".") == " → ".join(" / ".join(g) for g in LAYERS)
