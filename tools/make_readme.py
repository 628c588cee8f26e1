"""Write README.md from nbs/index.ipynb (nbconvert's markdown exporter; Quarto is not needed).

Usage: python tools/make_readme.py [--check]   (--check: exit 1 if README.md is out of date)
"""
import sys, re
from pathlib import Path
import nbformat
from nbconvert import MarkdownExporter

ROOT = Path(__file__).resolve().parents[1]
HEADER = "<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->\n\n"

def _hidden(cell):
    return cell.cell_type == 'code' and re.search(r'^#\|\s*hide\b', cell.source, re.M)

def render(nb_path=ROOT/'nbs'/'index.ipynb') -> str:
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells = [c for c in nb.cells if not _hidden(c)]
    for c in nb.cells:
        if c.cell_type == 'code': c.source = re.sub(r'^#\|.*\n?', '', c.source, flags=re.M)
    body, _ = MarkdownExporter(exclude_output_prompt=True, exclude_input_prompt=True).from_notebook_node(nb)
    body = re.sub(r'\n{3,}', '\n\n', body).strip() + '\n'
    # nbdev's front matter: "> summary" right under the title stays a blockquote
    return HEADER + body

def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    text, out = render(), ROOT/'README.md'
    if '--check' in argv:
        if not out.exists() or out.read_text() != text:
            print('README.md is out of date: run `python tools/make_readme.py`', file=sys.stderr); return 1
        print('README.md is up to date'); return 0
    out.write_text(text); print(f'wrote {out}'); return 0

if __name__ == '__main__': sys.exit(main())
