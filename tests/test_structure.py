"""Module layering: every `cellseg_nb` module imports only modules of earlier notebooks, and there is no import cycle.

The order is the notebooks' numbering in `nbs/` (each notebook's `#| default_exp`). Imports are read with `ast`,
those inside functions included, so a cycle hidden by a function-level import still fails."""
import ast, json, re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = 'cellseg_nb'

def notebook_order() -> dict:
    "`{module: position}` from the numbered notebooks' `#| default_exp` (the package itself comes first)"
    order = {PKG: -1}
    for i, nb in enumerate(sorted((ROOT/'nbs').glob('[0-9]*.ipynb'))):
        for c in json.loads(nb.read_text())['cells']:
            m = re.search(r'^#\|\s*default_exp\s+(\S+)', ''.join(c['source']), re.M)
            if c['cell_type'] == 'code' and m: order[f'{PKG}.{m[1]}'] = i; break
    return order

def _module_name(path:Path) -> str:
    parts = path.relative_to(ROOT).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)

def _resolve(node, mod:str, is_pkg:bool) -> list:
    "The `cellseg_nb` modules an `Import`/`ImportFrom` node names (`from .x import y` may name module `.x.y`)"
    if isinstance(node, ast.Import): return [a.name for a in node.names]
    if node.level:
        base = mod.split('.') if is_pkg else mod.split('.')[:-1]
        base = base[:len(base) - (node.level - 1)]
        src = '.'.join(base + ([node.module] if node.module else []))
    else: src = node.module or ''
    return [src] + [f'{src}.{a.name}' for a in node.names]

def package_imports() -> dict:
    "`{module: {imported cellseg_nb module: line}}` for every module of the package, imports inside functions included"
    mods = {}
    for p in sorted((ROOT/PKG).rglob('*.py')):
        if p.name == '_modidx.py': continue
        mod = _module_name(p); out = {}
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for name in _resolve(node, mod, p.name == '__init__.py'):
                    if name == PKG or name.startswith(PKG + '.'): out.setdefault(name, node.lineno)
        mods[mod] = out
    for mod, imps in mods.items():  # keep names that are modules (`from .core import read_image` names `core`, not `core.read_image`)
        mods[mod] = {n: l for n, l in imps.items() if n in mods and n != mod}
    return mods

def _cycles(graph:dict) -> list:
    "Strongly connected components of more than one module (Tarjan)"
    idx, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    def visit(v):
        idx[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
        for w in graph.get(v, ()):
            if w not in idx: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    for v in sorted(graph):
        if v not in idx: visit(v)
    return out

def test_every_module_has_a_notebook():
    order, mods = notebook_order(), package_imports()
    missing = [m for m in mods if m not in order and not m.endswith('.__init__') and m not in (f'{PKG}.data', f'{PKG}.models')]
    assert not missing, f"modules without a numbered notebook: {missing}"

def test_no_import_cycle():
    cycles = _cycles({m: set(i) for m, i in package_imports().items()})
    assert not cycles, 'import cycles: ' + '; '.join(' <-> '.join(c) for c in cycles)

def test_imports_follow_notebook_order():
    order, bad = notebook_order(), []
    for mod, imps in package_imports().items():
        for name, line in imps.items():
            if name in order and mod in order and order[name] > order[mod]:
                bad.append(f"{mod} (line {line}) imports {name}, a later notebook")
    assert not bad, 'backward imports:\n' + '\n'.join(sorted(bad))

def test_fixtures_not_in_pipeline_api():
    "Test fixtures live in `cellseg_nb.test_utils` only: no pipeline module lists them in `__all__`"
    fixtures = set(ast.literal_eval(next(n.value for n in ast.parse((ROOT/PKG/'test_utils.py').read_text()).body
                                         if isinstance(n, ast.Assign) and getattr(n.targets[0], 'id', '') == '__all__')))
    assert {'TinyNet', 'SquaresDataset', 'LocalServer'} <= fixtures
    for p in (ROOT/PKG).rglob('*.py'):
        if p.name in ('test_utils.py', '_modidx.py'): continue
        for n in ast.parse(p.read_text()).body:
            if isinstance(n, ast.Assign) and getattr(n.targets[0], 'id', '') == '__all__' and isinstance(n.value, ast.List):
                assert not fixtures & set(ast.literal_eval(n.value)), f"{p.name} exports test fixtures {fixtures & set(ast.literal_eval(n.value))}"
