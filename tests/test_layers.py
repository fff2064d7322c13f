"""The package's layering: every import goes down the floors below (or stays on its floor), and no
module reaches itself through imports. Lazy imports inside functions count; imports under
`if TYPE_CHECKING:` (annotations only) do not.

Floors, lowest first: a module may import its own floor and the ones below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

FLOORS: list[tuple[str, ...]] = [
    ("pioneer", "errors", "text", "atomic", "interrupts", "config", "distributed", "images", "validate"),
    ("model", "data"),          # networks, losses, code statistics; data sets and the synthetic faces
    ("run",),                   # the run folder's files: checkpoints, integrity, stats, resume
    ("inference",),             # the Pioneer facade, latent tools, alignment
    ("metrics",),               # named metrics
    ("training",),              # the loop (which may run metrics at grid time)
    ("share",),                 # pretrained folders, the Hub, model cards, export, the run report
    ("demo",),
    ("cli",),
    ("entry", "__main__"),
]

# The one way up, kept on purpose: the facade's Hugging Face-style methods (from_pretrained,
# save_pretrained, push_to_hub) delegate to share/, lazily, so `Pioneer.from_pretrained` works
# as users of transformers and diffusers expect.
ALLOWED_UP = {("pioneer.inference.facade", "pioneer.share.hub"),
              ("pioneer.inference.facade", "pioneer.share.models")}


def _modules() -> dict[str, Path]:
    out = {}
    for f in (SRC / "pioneer").rglob("*.py"):
        parts = f.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The pioneer modules `path` imports, at any depth, except under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "pioneer":
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
            # `from pioneer import interrupts` imports the submodule, not the package's own names
            found |= subs if len(subs) == len(node.names) else subs | {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "pioneer"}
    return found & modules.keys()


def _floor(module: str) -> int:
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else parts[0]
    for i, names in enumerate(FLOORS):
        if name in names:
            return i
    raise AssertionError(f"{module} is on no floor: add {name!r} to FLOORS in {__file__}")


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(p, modules) - {m} for m, p in modules.items()}


def test_every_import_goes_down_or_stays_on_its_floor(graph):
    up = sorted((m, d) for m, deps in graph.items() for d in deps
                if _floor(d) > _floor(m) and (m, d) not in ALLOWED_UP)
    assert not up, "imports from a lower floor to a higher one:\n" + "\n".join(f"  {m} -> {d}" for m, d in up)
    assert all(d in graph[m] for m, d in ALLOWED_UP), "an allowed import is gone: drop it from ALLOWED_UP"


def test_no_module_reaches_itself_through_imports(graph):
    edges = {m: {d for d in deps if (m, d) not in ALLOWED_UP} for m, deps in graph.items()}
    done: set[str] = set()

    def visit(m: str, path: list[str]) -> None:
        if m in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(m):] + [m]))
        if m in done:
            return
        for d in sorted(edges[m]):
            visit(d, path + [m])
        done.add(m)

    for m in sorted(edges):
        visit(m, [])


def test_the_checks_see_lazy_imports_and_catch_a_way_up(tmp_path):
    """The walker finds imports inside functions and skips annotation-only ones."""
    f = tmp_path / "m.py"
    f.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pioneer.share import hub\n"
                 "def g():\n    from pioneer.training.loop import train\n    from pioneer import interrupts\n")
    modules = _modules()
    assert _imports(f, modules) == {"pioneer.training.loop", "pioneer.interrupts"}
    assert _floor("pioneer.training.loop") > _floor("pioneer.model.loss")
