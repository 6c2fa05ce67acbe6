"""smoke probe `torch loads its libraries`: without a GPU, is every library torch loads there?

    python3 -c <this>

1. `import torch`, then the CUDA/ROCm libraries mapped into the process (/proc/self/maps).
2. A CUDA build's own list of the libraries it preloads by name (`cuda_libs` in
   `_preload_cuda_deps` of the installed torch/__init__.py, read with ast, not copied here):
   each is looked up with torch's own `_get_cuda_dep_paths` over sys.path, as torch does, and
   loaded with ctypes.
3. Libraries that loaded libraries dlopen by name, found as strings in the loader itself:
   cuDNN's sub-libraries (libcudnn, libcudnn_graph), torch's lazily loaded parts
   (libtorch_cuda), NVRTC's builtins (libnvrtc), CUPTI's perf host library (libcupti). Each
   name must exist next to its loader (any version suffix) and load.
Prints one JSON object; `problems` lists what is missing or does not load.
"""

from __future__ import annotations

import ast
import ctypes
import glob
import json
import os
import re
import sys

# (loader, relative to site-packages; names it dlopens, as a regex over its bytes)
DLOPENED = [
    ("nvidia/cudnn/lib/libcudnn.so.*", rb"libcudnn_[a-z_]+\.so"),
    ("nvidia/cudnn/lib/libcudnn_graph.so.*", rb"libcudnn_[a-z_]+\.so"),
    ("torch/lib/libtorch_cuda.so", rb"lib(?:torch|caffe2)_[a-z_]+\.so"),
    ("nvidia/*/lib/libnvrtc.so.*", rb"libnvrtc-builtins\.so(?:\.[0-9]+)*"),
    ("nvidia/*/lib/libcupti.so.*", rb"libnvperf_host\.so"),
]


def main() -> int:
    out = {"problems": [], "mapped": [], "preloaded": [], "dlopened": []}
    import torch  # noqa: PLC0415

    out["torch"] = torch.__version__
    out["cuda"] = torch.version.cuda
    with open("/proc/self/maps") as f:
        mapped = sorted({line.split()[-1] for line in f if ".so" in line.split()[-1]})
    out["mapped"] = [os.path.basename(p) for p in mapped
                     if re.search(r"lib(cu|nv|nccl|torch_cuda|c10_cuda)", os.path.basename(p))]
    site = os.path.dirname(os.path.dirname(torch.__file__))

    # 2. torch's preload list, from its own source.
    tree = ast.parse(open(torch.__file__).read())
    lists = [node.value for node in ast.walk(tree)
             if isinstance(node, (ast.Assign, ast.AnnAssign))
             and any(isinstance(t, ast.Name) and t.id == "cuda_libs"
                     for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))]
    if torch.version.cuda and not lists:
        out["problems"].append("no `cuda_libs` list in torch/__init__.py: torch's loader changed")
    # Only a CUDA build preloads them; a CPU or ROCm torch carries the list but never uses it.
    for value in lists if torch.version.cuda else []:
        for folder, pattern in ast.literal_eval(value):
            found = [p for path in sys.path for p in torch._get_cuda_dep_paths(path, folder, pattern)]
            if not found:
                out["problems"].append(f"torch preloads {folder}/{pattern}: not found")
                continue
            try:
                ctypes.CDLL(found[0])
                out["preloaded"].append(os.path.relpath(found[0], site))
            except OSError as err:
                out["problems"].append(f"{found[0]}: does not load: {err}")

    # 3. names dlopened by loaded libraries.
    for loader_glob, regex in DLOPENED:
        for loader in sorted(glob.glob(os.path.join(site, loader_glob))):
            names = sorted({m.decode() for m in re.findall(regex, open(loader, "rb").read())})
            here = os.path.dirname(loader)
            for name in names:
                candidates = sorted(glob.glob(os.path.join(here, name + "*")))
                if not candidates:
                    out["problems"].append(f"{os.path.relpath(loader, site)} loads {name}: "
                                           f"not in {os.path.relpath(here, site)}")
                    continue
                try:
                    ctypes.CDLL(candidates[0])
                    out["dlopened"].append(os.path.relpath(candidates[0], site))
                except OSError as err:
                    out["problems"].append(f"{candidates[0]}: does not load: {err}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
