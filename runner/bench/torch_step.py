"""`python -m runner.bench.torch_step FOLDER`: the bench's peer, one network's training step in PyTorch,
timed; run by runner/bench/peer.py in its own process, as it imports no TensorFlow.

FOLDER holds settings.json and batches.npz (uint8 [N, B, H, W, C] images, [N, B] labels); result.json
receives {images, seconds} or {reason}. The network is torchvision's of the same name (its ResNets,
VGGs, AlexNet and GoogLeNet, which our zoo reproduces exactly), for the configured classes, refused
unless it has as many trainable parameters as ours: a peer of another size is no comparison. It
trains as ours does (runner/training/steps.py): the batch normalised inside the step from uint8, the
configured optimizer (SGD with momentum and the papers' L2 term, which is torch's weight_decay; Adam
likewise; AdamW decoupled) at a constant rate, cross-entropy with the same label smoothing and
GoogLeNet's auxiliary heads at the same weight; in channels-last memory (oneDNN's layout on a CPU),
under autocast where ours is mixed precision, eager as ours runs on a CPU (XLA off); the host reads
the loss after every step, as ours does.
"""

import json
import pathlib
import sys
import time

import numpy as np

TORCHVISION = ("alexnet", "googlenet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
               "vgg11", "vgg13", "vgg16", "vgg19")  # model.name: torchvision.models' builder of that name
AUTOCAST = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}  # our dtype policy -> autocast's dtype


class Refused(Exception):
    """No comparable peer; the message says why."""


def main(folder: pathlib.Path) -> None:
    settings = json.loads((folder / "settings.json").read_text())
    try:
        result = measure(settings, np.load(folder / "batches.npz"))
    except Refused as why:
        result = {"reason": str(why)}
    (folder / "result.json").write_text(json.dumps(result))


def measure(settings: dict, batches) -> dict:
    import torch

    torch.set_num_threads(settings["threads"])
    device = torch.device("cuda" if settings["gpu"] and torch.cuda.is_available() else "cpu")
    network = _network(settings).to(device, memory_format=torch.channels_last)
    held = [(torch.from_numpy(images).to(device), torch.from_numpy(labels).long().to(device))
            for images, labels in zip(batches["images"], batches["labels"])]
    step = _train_step(settings, network, device)
    for index in range(settings["warmup_steps"]):
        step(*held[index % len(held)])
    start = time.perf_counter()
    for index in range(settings["steps"]):
        step(*held[index % len(held)])
    seconds = time.perf_counter() - start
    return {"images": settings["steps"] * int(held[0][1].shape[0]), "seconds": seconds}


def _network(settings: dict):
    import torchvision

    options = {"num_classes": settings["classes"]}
    if settings["model"] == "googlenet":
        options |= {"aux_logits": settings["aux_loss_weight"] > 0, "init_weights": True}
    network = getattr(torchvision.models, settings["model"])(**options)
    theirs = sum(parameter.numel() for parameter in network.parameters())
    if theirs != settings["trainable_parameters"]:
        raise Refused(f"torchvision's {settings['model']} for {settings['classes']} classes has {theirs:,} "
                      f"trainable parameters and ours {settings['trainable_parameters']:,}: not the same network")
    return network.train()


def _train_step(settings: dict, network, device):
    import torch

    shape = (1, -1, 1, 1)
    mean = torch.tensor(settings["mean"], device=device).view(shape) * 255
    std = torch.tensor(settings["std"], device=device).view(shape) * 255
    autocast = AUTOCAST.get(settings["precision"])
    dtype = getattr(torch, autocast) if autocast else torch.float32
    optimizer = _optimizer(settings["optimizer"], network)
    loss_of = torch.nn.CrossEntropyLoss(label_smoothing=settings["label_smoothing"])

    def step(images, labels):  # [B, H, W, C] uint8 as the pipeline gives it
        optimizer.zero_grad(set_to_none=True)
        normalised = ((images.permute(0, 3, 1, 2).float() - mean) / std).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype, enabled=autocast is not None):
            outputs = network(normalised)
            main, *aux = outputs if isinstance(outputs, tuple) else (outputs,)  # GoogLeNet's (main, aux2, aux1)
            loss = loss_of(main, labels)
            for head in aux:
                loss = loss + settings["aux_loss_weight"] * loss_of(head, labels)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def _optimizer(options: dict, network):
    import torch

    parameters = network.parameters()
    if options["name"] == "sgd":
        return torch.optim.SGD(parameters, lr=options["lr"], momentum=options["momentum"],
                               nesterov=options["nesterov"], weight_decay=options["weight_decay"])
    if options["name"] == "adam":
        return torch.optim.Adam(parameters, lr=options["lr"], weight_decay=options["weight_decay"])
    return torch.optim.AdamW(parameters, lr=options["lr"], weight_decay=options["weight_decay"])


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
