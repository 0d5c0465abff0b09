"""Build hook for the sidebar: rebuild the labextension when any of its inputs changed.

hatch-jupyter-builder's own staleness check looks at one source directory; the sidebar's
inputs are the TypeScript in src/, the CSS in style/, the settings schema and the package
manifest, so a change to any of them must trigger `jlpm build:prod`.
"""

from __future__ import annotations

from pathlib import Path

from hatch_jupyter_builder import npm_builder

INPUTS = ("src", "style", "schema", "package.json", "yarn.lock", "tsconfig.json")


def _newest(path: Path) -> float:
    if path.is_file():
        return path.stat().st_mtime
    return max((p.stat().st_mtime for p in path.rglob("*") if p.is_file()), default=0.0)


def build(target_name: str, version: str, path: str, build_dir: str, **kwargs) -> None:
    package, output = Path(path), Path(build_dir)
    built = output / "package.json"
    newest_input = max(_newest(package / name) for name in INPUTS if (package / name).exists())
    if built.exists() and _newest(output) >= newest_input:
        return   # up to date: installs without node (e.g. from a prebuilt sdist)
    npm_builder(target_name, version, path=path, build_dir=build_dir, force=True, **kwargs)
