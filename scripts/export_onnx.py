#!/usr/bin/env python3
"""Exports an RF-DETR checkpoint to ONNX with detrq's model contract; the one Python step of `detrq prepare`.

Contract: input `input` float32 1x3x512x512 (letterboxed RGB, ImageNet mean/std), outputs `dets` [1,Q,4]
(cxcywh, normalized to the 512x512 input) and `labels` [1,Q,C] (logits; the labels index is the COCO category
id), opset 17, class names as JSON (id -> name) in the model's metadata_props under `class_names`.

Back ends: the `rfdetr` package when importable, else transformers' `RfDetrForObjectDetection` (a Hugging Face
checkpoint folder or repo id). Exit codes follow detrq's: 2 bad command line, 3 neither back end installed or
a checkpoint that cannot be read, 6 output not writable.

Usage: export_onnx.py --output model.onnx [--model-variant small|base] [--checkpoint PATH_OR_REPO]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile

SIZE = 512
OPSET = 17


def _fail(code: int, what: str, hint: str) -> "NoReturn":  # noqa: F821
    print(f"export_onnx.py: error: {what} ({hint})", file=sys.stderr)
    sys.exit(code)


def patch_position_embeddings(model, size: int = SIZE) -> None:
    """Bakes the DINOv2 position embeddings for a size x size input into the model and skips their resize.

    transformers always interpolates them while tracing (antialiased bicubic), which ONNX cannot express; for a
    fixed input size the result is a constant, so compute it once here in PyTorch and keep it as the parameter.
    """
    import torch
    from transformers.models.rf_detr import modeling_rf_detr as mod

    emb = model.model.backbone.backbone.embeddings
    grid = size // emb.patch_size
    have = emb.position_embeddings.shape[1] - 1
    if have != grid * grid:
        with torch.no_grad():
            dummy = torch.zeros(1, grid * grid + 1, emb.position_embeddings.shape[-1])
            pos = emb.interpolate_pos_encoding(dummy, size, size)
        emb.position_embeddings = torch.nn.Parameter(pos.detach().clone())
    original = mod.RfDetrDinov2Embeddings.interpolate_pos_encoding

    def interpolate_pos_encoding(self, embeddings, height, width):
        if embeddings.shape[1] == self.position_embeddings.shape[1]:
            return self.position_embeddings  # the grid already matches: no resize in the graph
        return original(self, embeddings, height, width)

    mod.RfDetrDinov2Embeddings.interpolate_pos_encoding = interpolate_pos_encoding


def export_transformers_model(model, output: str, class_names: dict[int, str] | None = None,
                              size: int = SIZE) -> None:
    """Writes `model` (an RfDetrForObjectDetection) to `output` (atomically) under the contract above."""
    import onnx
    import torch

    class Contract(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            out = self.m(pixel_values=x)
            return out.pred_boxes, out.logits

    model = model.float().eval()
    patch_position_embeddings(model, size)
    wrapper = Contract(model).eval()
    out_dir = os.path.dirname(os.path.abspath(output))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=out_dir)
    os.close(fd)
    try:
        with torch.no_grad():
            torch.onnx.export(wrapper, (torch.zeros(1, 3, size, size),), tmp, input_names=["input"],
                              output_names=["dets", "labels"], opset_version=OPSET, dynamo=False,
                              do_constant_folding=True)
        proto = onnx.load(tmp)
        if class_names:
            entry = proto.metadata_props.add()
            entry.key, entry.value = "class_names", json.dumps({str(k): v for k, v in sorted(class_names.items())})
        onnx.save(proto, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the model is an ordinary readable file
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _export_with_rfdetr(variant: str, checkpoint: str | None, output: str) -> None:
    import shutil

    import rfdetr

    cls = {"small": "RFDETRSmall", "base": "RFDETRBase"}[variant]
    if not hasattr(rfdetr, cls):
        _fail(3, f"the installed rfdetr package has no {cls}", "install a newer rfdetr, or use transformers")
    kwargs = {"resolution": SIZE}
    if checkpoint:
        kwargs["pretrain_weights"] = checkpoint
    model = getattr(rfdetr, cls)(**kwargs)
    with tempfile.TemporaryDirectory() as tmp:
        # rfdetr's own exporter already names the input `input` and the outputs `dets` and `labels`.
        model.export(output_dir=tmp, opset_version=OPSET, simplify=False)
        produced = [f for f in os.listdir(tmp) if f.endswith(".onnx")]
        if not produced:
            _fail(70, "rfdetr's exporter wrote no ONNX file", "please report this")
        import onnx
        proto = onnx.load(os.path.join(tmp, produced[0]))
        names = getattr(model, "class_names", None)
        if names and not any(p.key == "class_names" for p in proto.metadata_props):
            entry = proto.metadata_props.add()
            mapping = names if isinstance(names, dict) else dict(enumerate(names))
            entry.key, entry.value = "class_names", json.dumps({str(k): v for k, v in mapping.items()})
        onnx.save(proto, os.path.join(tmp, "out.onnx"))
        shutil.move(os.path.join(tmp, "out.onnx"), output)


def _export_with_transformers(variant: str, checkpoint: str | None, output: str) -> None:
    from transformers import RfDetrForObjectDetection

    if not checkpoint:
        _fail(3, "--checkpoint is required with the transformers back end",
              "pass a Hugging Face RF-DETR checkpoint folder or repo id")
    try:
        model = RfDetrForObjectDetection.from_pretrained(checkpoint)
    except (OSError, ValueError) as e:
        _fail(3, f"{checkpoint}: cannot load an RF-DETR checkpoint: {e}", "pass a Hugging Face RF-DETR checkpoint")
    id2label = getattr(model.config, "id2label", None) or {}
    names = {int(k): v for k, v in id2label.items() if not str(v).startswith("LABEL_")}
    export_transformers_model(model, output, names or None)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-variant", choices=["small", "base"], default="small",
                    help="rfdetr back end (transformers reads the architecture from the checkpoint)")
    ap.add_argument("--checkpoint", help="checkpoint file (rfdetr) or Hugging Face folder/repo id (transformers)")
    ap.add_argument("--output", required=True, help="ONNX file to write")
    a = ap.parse_args(argv)
    have = {m: importlib.util.find_spec(m) is not None for m in ("torch", "rfdetr", "transformers", "onnx")}
    if not have["torch"] or not have["onnx"] or not (have["rfdetr"] or have["transformers"]):
        missing = [m for m in ("torch", "onnx") if not have[m]]
        if not (have["rfdetr"] or have["transformers"]):
            missing.append("rfdetr or transformers")
        _fail(3, f"cannot export: missing Python package(s): {', '.join(missing)}",
              "pip install torch onnx rfdetr (or transformers>=5.17), or pass --onnx/--skip-export to detrq prepare")
    try:
        if have["rfdetr"]:
            _export_with_rfdetr(a.model_variant, a.checkpoint, a.output)
        else:
            _export_with_transformers(a.model_variant, a.checkpoint, a.output)
    except PermissionError as e:
        _fail(6, f"{a.output}: {e}", "choose a writable output path")
    print(a.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
