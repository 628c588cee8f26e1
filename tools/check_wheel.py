"""Check that a built wheel holds every subpackage of cellseg_nb, and (with --import) that each module imports.

Usage: python tools/check_wheel.py dist/cellseg_nb-*.whl [--import]
"""
import sys, zipfile, importlib, pkgutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def expected_packages(root=ROOT/'cellseg_nb'):
    "Every folder of the source tree that is a package (has __init__.py), as a path inside the wheel"
    return sorted(str(p.parent.relative_to(ROOT)) for p in root.rglob('__init__.py') if '__pycache__' not in p.parts)

def check_wheel(whl):
    names = zipfile.ZipFile(whl).namelist()
    missing = [p for p in expected_packages() if f'{p}/__init__.py' not in names]
    mods = [n for n in names if n.startswith('cellseg_nb/') and n.endswith('.py')]
    if missing: raise SystemExit(f'{whl}: missing subpackages {missing}: check [tool.setuptools.packages.find] include')
    if not any(n.endswith('entry_points.txt') and 'cellseg' in zipfile.ZipFile(whl).read(n).decode() for n in names):
        raise SystemExit(f'{whl}: no `cellseg` console script in entry_points.txt')
    print(f'{Path(whl).name}: {len(expected_packages())} packages, {len(mods)} modules, all present')

def check_imports():
    import cellseg_nb
    where = Path(cellseg_nb.__file__).parent
    if ROOT in where.parents or where.parent == ROOT: raise SystemExit(f'imported from the source tree {where}, not the wheel')
    n = 0
    for m in pkgutil.walk_packages(cellseg_nb.__path__, 'cellseg_nb.'):
        importlib.import_module(m.name); n += 1
    print(f'imported {n} modules from {where}')

if __name__ == '__main__':
    check_wheel(sys.argv[1])
    if '--import' in sys.argv: check_imports()
