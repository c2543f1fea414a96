"""Run exported artifacts in a process that cannot import recsys (started by `verify.py`).

Usage: python -I -S verify_child.py <export_dir> <cases.pt> <outputs.pt> <torch site dir>

`-I -S` drops the working directory, the user site and every .pth file (an editable install of
recsys is one), then only torch's own site directory is put back. The artifacts are loaded through
the copy of `loader.py` that the export ships, so the sha256 checks run here too.
"""

import importlib.util
import runpy
import sys
from pathlib import Path


def main() -> None:
    export_dir, cases_path, outputs_path, site_dir = sys.argv[1:5]
    sys.path.append(site_dir)
    recsys_importable = importlib.util.find_spec("recsys") is not None
    import torch

    loader = runpy.run_path(str(Path(export_dir) / "loader.py"))
    cases = torch.load(cases_path, weights_only=True)
    outputs = {"recsys_importable": recsys_importable, "sys_path": list(sys.path), "runs": {}}
    for key, case in cases.items():
        name, fmt = case["artifact"], case["format"]
        if name == "index":  # the FAISS index answers through the loader's own search
            module = loader["load_index"](export_dir, allow_unverified=True)
        else:
            module = loader["load_artifact"](export_dir, name, fmt, allow_unverified=True)
        results = []
        with torch.no_grad():
            for args in case["inputs"]:
                if fmt == "onnx":  # an onnxruntime session: numpy arrays by input name
                    results.append(run_onnx(torch, module, args))
                    continue
                if fmt == "pt2":  # exported programs take tensors only
                    args = [a if isinstance(a, torch.Tensor) else torch.tensor(a) for a in args]
                out = module(*args)
                results.append(list(out) if isinstance(out, (tuple, list)) else [out])
        outputs["runs"][key] = results
    torch.save(outputs, outputs_path)


def run_onnx(torch, session, args) -> list:
    names = [i.name for i in session.get_inputs()]
    feeds = {n: torch.as_tensor(a).numpy() for n, a in zip(names, args, strict=True)}
    return [torch.from_numpy(out) for out in session.run(None, feeds)]


if __name__ == "__main__":
    main()
