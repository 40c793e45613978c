#!/usr/bin/env python3
"""Loads a simclr-wgpu checkpoint's encoder into PyTorch and compares its features with the
project's own (`simclr embed`). Not part of `cargo test` (it needs torch, torchvision and
safetensors); run by hand, e.g.:

    simclr embed --checkpoint runs/NAME --split test --limit 64 --out /tmp/f.safetensors
    python3 tests/torch/check_checkpoint.py runs/NAME/checkpoint-XXXXXXXX.safetensors \
        /tmp/f.safetensors --arch tiny --data ../shared/data

It checks that load_state_dict(strict=True) accepts every encoder tensor (names and shapes are
PyTorch's) and prints the largest difference between the two frameworks' eval-mode features.
"""
import argparse
import os

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file


def tiny():
    def block(cin, cout, stride):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(block(3, 32, 1), block(32, 64, 2), block(64, 128, 2), block(128, 256, 2))

        def forward(self, x):
            return self.body(x).mean(dim=(2, 3))

    return Tiny()


def resnet(name):
    import torchvision

    m = getattr(torchvision.models, name)(weights=None)
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)  # the CIFAR stem
    m.maxpool = nn.Identity()
    m.fc = nn.Identity()
    return m


def cifar10_test(data, n):
    raw = np.fromfile(os.path.join(data, "cifar-10-batches-bin", "test_batch.bin"), dtype=np.uint8)
    rec = raw.reshape(-1, 3073)[:n]
    x = rec[:, 1:].reshape(n, 3, 32, 32).astype(np.float32) / 255.0
    train = np.concatenate(
        [np.fromfile(os.path.join(data, "cifar-10-batches-bin", f"data_batch_{i}.bin"), dtype=np.uint8).reshape(-1, 3073)[:, 1:] for i in range(1, 6)]
    ).reshape(-1, 3, 1024).astype(np.float64) / 255.0
    mean, std = train.mean(axis=(0, 2)), train.std(axis=(0, 2))  # population std, as the project
    x = (x - mean[None, :, None, None]) / std[None, :, None, None]
    return torch.from_numpy(x.astype(np.float32)), rec[:, 0].astype(np.int64)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("checkpoint")
    p.add_argument("features")
    p.add_argument("--arch", default="tiny", choices=["tiny", "resnet18", "resnet34", "resnet50"])
    p.add_argument("--data", default="../shared/data")
    a = p.parse_args()
    sd = load_file(a.checkpoint)
    enc = {k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")}
    model = tiny() if a.arch == "tiny" else resnet(a.arch)
    model.load_state_dict(enc, strict=True)
    print(f"load_state_dict(strict=True): {len(enc)} encoder tensors loaded into {a.arch}")
    ours = load_file(a.features)
    feats, labels = ours["features"], ours["labels"]
    x, y = cifar10_test(a.data, feats.shape[0])
    assert (labels.numpy() == y).all(), "labels differ: is the features file of the test split?"
    model.eval()
    with torch.no_grad():
        theirs = model(x)
    diff = (theirs - feats).abs().max().item()
    scale = theirs.abs().max().item()
    print(f"{feats.shape[0]} images, {feats.shape[1]} features: max |torch - simclr-wgpu| = {diff:.3g} (max |feature| {scale:.3g})")
    assert diff <= 1e-3 * max(scale, 1.0), "features differ"
    print("OK")


if __name__ == "__main__":
    main()
