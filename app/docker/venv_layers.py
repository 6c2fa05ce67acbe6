"""Build-time sorting of one virtual environment into image layers by how often they change.

    python venv_layers.py lock-names LOCK                      > names.txt
    python venv_layers.py split VENV LAYERS [--leave NAMES] [--groups GLOB=N ...]
    python venv_layers.py drop VENV LAYERS

The venv stays one environment (one site-packages, one `uv pip check`); only the image stores it
in several layers, so that a change to the app's locked dependencies leaves the big, rarely
changing torch family byte-identical and a host that has the previous image pulls only the rest.

lock-names  The distribution names a requirements lock pins (PEP 503 normalised, sorted). The
            torch stage reads this list, not the lock: a version bump in the lock leaves the list
            and so the torch stage's cache key unchanged.
split       Run in the torch stage, in the same RUN that installed the torch family (the files
            are then new in that step's layer and linking them costs nothing; in a later step
            every link would first copy the file up from the layer below). Every file of every
            installed distribution, except those named in --leave (the lock installs them) or
            --leave-name (a later step removes them) and files outside site-packages
            (entry-point scripts), is hard-linked to LAYERS/<layer>/<VENV's own path>/<path>
            (so that `COPY LAYERS/<layer>/ /` makes no directory itself, every one carrying
            mtime 0 like the venv's files): distributions matching a --groups glob are
            spread over N layers `<prefix>-1`..`<prefix>-N` of similar size (largest first, each
            into the smallest so far), all others go to LAYERS/torch. LAYERS/manifest.json
            records each file with its size, mode and mtime.
drop        Run in the deps stage after the locked install, trim and import test: proves that no
            file of the manifest changed since `split` (the layers hold what was tested), then
            deletes them from VENV, so that what is left is the rest of the venv, copied as a
            layer of its own above the torch family.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import stat
import sys
from pathlib import Path

MANIFEST = "manifest.json"
DEFAULT_LAYER = "torch"


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_names(text: str) -> list[str]:
    """Names pinned in a requirements file: `name==1.0 ; marker \\` lines; hashes and comments
    (indented `--hash` continuation lines, `#` lines) are skipped."""
    names = set()
    for line in text.splitlines():
        if not line or line[0].isspace() or line.startswith(("#", "-")):
            continue
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
        if match:
            names.add(normalized(match.group(0)))
    return sorted(names)


def site_packages(venv: Path) -> Path:
    sites = sorted(venv.glob("lib/python3*/site-packages"))
    if len(sites) != 1:
        raise SystemExit(f"error: expected one site-packages under {venv}, found {sites}")
    return sites[0]


def distributions(site: Path) -> dict[str, list[str]]:
    """Each installed distribution's files (site-packages-relative, as its RECORD lists them)."""
    dists: dict[str, list[str]] = {}
    for info in sorted(site.glob("*.dist-info")):
        meta = info / "METADATA"
        record = info / "RECORD"
        if not meta.is_file() or not record.is_file():
            continue
        name = next((line.split(":", 1)[1].strip() for line in meta.read_text(errors="replace")
                     .splitlines() if line.startswith("Name:")), info.name.split("-")[0])
        rows = [line.split(",")[0] for line in record.read_text(errors="replace").splitlines()]
        dists[normalized(name)] = [r for r in rows if r]
    return dists


def owners(site: Path, dists: dict[str, list[str]]) -> dict[str, str]:
    """site-packages-relative path -> owning distribution, for the files that exist. Byte code
    that no RECORD lists (`pkg/__pycache__/m.cpython-313.pyc`) belongs to the owner of `pkg/m.py`."""
    owner: dict[str, str] = {}
    for name in sorted(dists):
        for rel in dists[name]:
            path = os.path.normpath(rel)
            if path.startswith("..") or os.path.isabs(path):
                continue  # entry-point scripts in bin/: they stay with the rest of the venv
            if (site / path).is_file() or (site / path).is_symlink():
                owner.setdefault(path, name)
    for root, _dirs, files in os.walk(site):
        here = Path(root)
        if here.name != "__pycache__":
            continue
        for f in files:
            rel = (here / f).relative_to(site).as_posix()
            if rel in owner or not f.endswith(".pyc"):
                continue
            source = (here.parent / (f.split(".", 1)[0] + ".py")).relative_to(site).as_posix()
            if source in owner:
                owner[rel] = owner[source]
    return owner


def parse_groups(specs: list[str]) -> list[tuple[str, str, int]]:
    """`nvidia-*=3` -> (glob, layer prefix, count)."""
    groups = []
    for spec in specs:
        glob, _, count = spec.partition("=")
        if not glob or not count.isdigit() or int(count) < 1:
            raise SystemExit(f"error: --groups {spec!r}: expected GLOB=N with N >= 1, e.g. nvidia-*=3")
        prefix = re.sub(r"[^a-z0-9]+", "-", glob.lower()).strip("-") or "group"
        groups.append((normalized(glob), prefix, int(count)))
    return groups


def assign(sizes: dict[str, int], groups: list[tuple[str, str, int]]) -> dict[str, str]:
    """Distribution -> layer. Distributions of a group are packed largest first, each into the
    layer that is smallest so far (ties: the lower number), so N layers end up of similar size."""
    layer_of: dict[str, str] = {}
    for glob, prefix, count in groups:
        members = [d for d in sizes if d not in layer_of and fnmatch.fnmatchcase(d, glob)]
        totals = [0] * count
        for dist in sorted(members, key=lambda d: (-sizes[d], d)):
            i = min(range(count), key=lambda k: (totals[k], k))
            totals[i] += sizes[dist]
            layer_of[dist] = f"{prefix}-{i + 1}"
    for dist in sizes:
        layer_of.setdefault(dist, DEFAULT_LAYER)
    return layer_of


def layer_names(groups: list[tuple[str, str, int]]) -> list[str]:
    return [f"{p}-{i}" for _g, p, n in groups for i in range(1, n + 1)] + [DEFAULT_LAYER]


def fact(path: Path) -> list:
    st = path.lstat()
    target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
    return [st.st_size, st.st_mode, st.st_mtime_ns, target]


def mib(n: int) -> str:
    return f"{n / 2**20:9.1f} MiB"


def split(venv: Path, layers: Path, leave: set[str], groups: list[tuple[str, str, int]]) -> int:
    site = site_packages(venv)
    dists = {n: files for n, files in distributions(site).items() if n not in leave}
    owner = {p: d for p, d in owners(site, dists).items()}
    sizes = {d: 0 for d in dists}
    for rel, dist in owner.items():
        sizes[dist] += (site / rel).lstat().st_size
    layer_of = assign(sizes, groups)
    names = layer_names(groups)
    for name in names:
        (layers / name).mkdir(parents=True, exist_ok=False)
    files: dict[str, list] = {}
    site_rel = site.relative_to(venv)
    made_dirs: list[Path] = []
    for rel in sorted(owner):
        layer = layer_of[owner[rel]]
        src = site / rel
        in_image = site.relative_to("/") / rel
        # Parent directories get the real ones' modes (the COPY into the image sets owners).
        for parent in reversed(in_image.parents):
            made = layers / layer / parent
            if not made.exists():
                made.mkdir()
                os.chmod(made, stat.S_IMODE((Path("/") / parent).stat().st_mode))
                made_dirs.append(made)
        os.link(src, layers / layer / in_image, follow_symlinks=False)
        files[(site_rel / rel).as_posix()] = [layer, *fact(src)]
    # Last, as every link made above changed its directory's mtime: reproducible layers.
    for made in [layers / n for n in names] + made_dirs:
        os.utime(made, (0, 0))
    totals: dict[str, list[int]] = {n: [0, 0] for n in names}
    members: dict[str, list[str]] = {n: [] for n in names}
    for dist, layer in sorted(layer_of.items()):
        members[layer].append(dist)
    for entry in files.values():
        totals[entry[0]][0] += 1
        totals[entry[0]][1] += entry[1]
    (layers / MANIFEST).write_text(json.dumps(
        {"venv": str(venv), "layers": {n: {"files": totals[n][0], "bytes": totals[n][1],
                                            "distributions": members[n]} for n in names},
         "files": files}, indent=1, sort_keys=True))
    left = ", ".join(sorted(leave & set(distributions(site)))) or "-"
    print(f"venv layers of {venv} (left in the venv: {left}):")
    for n in names:
        print(f"  {n:12s} {mib(totals[n][1])} {totals[n][0]:6d} files  {', '.join(members[n]) or '-'}")
    empty = [n for n in names if n != DEFAULT_LAYER and totals[n][0] == 0]
    if empty:
        print(f"error: layers without files: {', '.join(empty)} (fewer distributions match the "
              "--groups globs than layers were asked for: lower N)", file=sys.stderr)
        return 1
    return 0


def drop(venv: Path, layers: Path) -> int:
    manifest = json.loads((layers / MANIFEST).read_text())
    changed, dirs = [], set()
    for rel, (layer, *expected) in sorted(manifest["files"].items()):
        path = venv / rel
        try:
            now = fact(path)
        except FileNotFoundError:
            changed.append(f"{rel} (in layer {layer}): removed")
            continue
        if now != expected:
            what = [k for k, a, b in zip(("size", "mode", "mtime", "link"), expected, now) if a != b]
            changed.append(f"{rel} (in layer {layer}): {', '.join(what)} changed")
    if changed:
        print("error: files of the torch-family layers changed after they were split off, so the "
              "layers would not hold what was tested:", file=sys.stderr)
        for line in changed[:20]:
            print(f"  {line}", file=sys.stderr)
        if len(changed) > 20:
            print(f"  … and {len(changed) - 20} more", file=sys.stderr)
        print("  A later step (the locked install or the trim) rewrote them: a package both the "
              "torch family and requirements.lock provide must be named in the lock-names list.",
              file=sys.stderr)
        return 1
    for rel in manifest["files"]:
        (venv / rel).unlink()
        dirs.update(Path(rel).parents)
    removed = 0
    for rel in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        path = venv / rel
        if rel.parts and path.is_dir() and not any(path.iterdir()):
            path.rmdir()
            removed += 1
    print(f"dropped {len(manifest['files'])} files and {removed} directories of the layers "
          f"{', '.join(manifest['layers'])} from {venv}: unchanged since the split")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("lock-names")
    p.add_argument("lock", type=Path)
    p = sub.add_parser("split")
    p.add_argument("venv", type=Path)
    p.add_argument("layers", type=Path)
    p.add_argument("--leave", type=Path, help="file of distribution names to leave in the venv")
    p.add_argument("--leave-name", action="append", default=[], metavar="NAME",
                   help="a distribution to leave in the venv (a later step removes it)")
    p.add_argument("--groups", action="append", default=[], metavar="GLOB=N")
    p = sub.add_parser("drop")
    p.add_argument("venv", type=Path)
    p.add_argument("layers", type=Path)
    args = parser.parse_args(argv[1:])
    if args.command == "lock-names":
        print("\n".join(lock_names(args.lock.read_text())))
        return 0
    if args.command == "split":
        leave = set(lock_names(args.leave.read_text())) if args.leave else set()
        leave |= {normalized(n) for n in args.leave_name}
        return split(args.venv, args.layers, leave, parse_groups(args.groups))
    return drop(args.venv, args.layers)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
