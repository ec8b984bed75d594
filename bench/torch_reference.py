#!/usr/bin/env python3
"""PyTorch reference for `npm run bench`.

Builds each darkroom model from its tfjs-layers topology (the `model_config` of model.json)
with a small interpreter of the layer classes the models use. PyTorch then runs the same layers
at the same shapes, timed the way the bench times darkroom. Weights are random, because speed
does not depend on them.

Input: a JSON spec on stdin (or --spec FILE) that bench/run.ts writes:
  {"threads": N, "warmup": 1, "repeats": 5, "items": [{"id", "topology", "inference"?,
   "training"?, "video"?}]}
Output: one JSON object on stdout. Shapes in the spec are channels-last, as tfjs has them.

FLOPs are two per multiply-add of the convolutions, transposed convolutions, dense layers and
ConvLSTM gate convolutions, counted from the shapes this interpreter sees; element-wise work
is left out, as bench/flops.ts leaves it out on the project's side.
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ACTIVATIONS = {
    None: lambda x: x,
    "linear": lambda x: x,
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    # tfjs-layers' hardSigmoid: clip(0.2 x + 0.5, 0, 1).
    "hard_sigmoid": lambda x: torch.clamp(0.2 * x + 0.5, 0.0, 1.0),
    "hardSigmoid": lambda x: torch.clamp(0.2 * x + 0.5, 0.0, 1.0),
}


def activation(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"unsupported activation {name}")
    return ACTIVATIONS[name]


def option(config, *names):
    """Return a layer option by its snake_case name, as model.json stores it, or its camelCase one."""
    for name in names:
        if name in config:
            return config[name]
    raise KeyError(names[0])


def pair(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


def same_padding(size, kernel, stride):
    """TensorFlow's 'same' padding along one axis: (before, after), the extra pixel at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Conv2D(nn.Module):
    """tfjs Conv2D, channels-last semantics on NCHW tensors."""

    def __init__(self, config, in_channels):
        super().__init__()
        self.kernel = pair(config["kernel_size"])
        self.stride = pair(config.get("strides", [1, 1]))
        self.padding = config.get("padding", "valid")
        self.act = activation(config.get("activation"))
        self.out_channels = config["filters"]
        self.conv = nn.Conv2d(in_channels, self.out_channels, self.kernel, self.stride, bias=config.get("use_bias", True))

    def forward(self, x, counter):
        if self.padding == "same":
            top, bottom = same_padding(x.shape[2], self.kernel[0], self.stride[0])
            left, right = same_padding(x.shape[3], self.kernel[1], self.stride[1])
            # Symmetric padding goes to the convolution itself, which avoids a padded copy.
            if top == bottom and left == right:
                y = F.conv2d(x, self.conv.weight, self.conv.bias, self.stride, (top, left))
            else:
                y = F.conv2d(F.pad(x, (left, right, top, bottom)), self.conv.weight, self.conv.bias, self.stride)
        else:
            y = self.conv(x)
        counter.add(2 * self.kernel[0] * self.kernel[1] * x.shape[1] * self.out_channels * y.shape[0] * y.shape[2] * y.shape[3])
        return self.act(y)


class Conv2DTranspose(nn.Module):
    """tfjs Conv2DTranspose: the full transposed convolution, cropped as TensorFlow pads."""

    def __init__(self, config, in_channels):
        super().__init__()
        self.kernel = pair(config["kernel_size"])
        self.stride = pair(config.get("strides", [1, 1]))
        self.padding = config.get("padding", "valid")
        self.act = activation(config.get("activation"))
        self.out_channels = config["filters"]
        self.conv = nn.ConvTranspose2d(in_channels, self.out_channels, self.kernel, self.stride, bias=config.get("use_bias", True))

    def forward(self, x, counter):
        y = self.conv(x)
        if self.padding == "same":
            crops = []
            for axis in range(2):
                size = x.shape[2 + axis]
                out = size * self.stride[axis]
                total = max((size - 1) * self.stride[axis] + self.kernel[axis] - out, 0)
                crops.append((total // 2, total // 2 + out))
            y = y[:, :, crops[0][0]:crops[0][1], crops[1][0]:crops[1][1]]
        counter.add(2 * self.kernel[0] * self.kernel[1] * x.shape[1] * self.out_channels * x.shape[0] * x.shape[2] * x.shape[3])
        return self.act(y)


class Dense(nn.Module):
    def __init__(self, config, in_features):
        super().__init__()
        self.out_channels = config["units"]
        self.linear = nn.Linear(in_features, self.out_channels, bias=config.get("use_bias", True))
        self.act = activation(config.get("activation"))

    def forward(self, x, counter):
        counter.add(2 * x.numel() * self.out_channels)
        return self.act(self.linear(x))


class ConvLSTM2D(nn.Module):
    """
    Keras/tfjs ConvLSTM2D with 'same' recurrent convolutions, gates in the order i, f, c, o, a
    zero initial state and return_sequences. The input convolution of all steps runs as one
    batch, as a PyTorch implementation would write it, and the arithmetic is the same.
    """

    def __init__(self, config, in_channels):
        super().__init__()
        if not config.get("return_sequences", False):
            raise ValueError("ConvLSTM2D without return_sequences is not used by darkroom")
        self.units = config["filters"]
        self.kernel = pair(config["kernel_size"])
        self.padding = config.get("padding", "valid")
        self.act = activation(config.get("activation", "tanh"))
        self.recurrent_act = activation(config.get("recurrent_activation", "hard_sigmoid"))
        self.out_channels = self.units
        self.input_conv = Conv2D({"filters": 4 * self.units, "kernel_size": self.kernel, "padding": self.padding}, in_channels)
        self.recurrent_conv = Conv2D({"filters": 4 * self.units, "kernel_size": self.kernel, "padding": "same", "use_bias": False}, self.units)

    def forward(self, x, counter):
        batch, steps = x.shape[0], x.shape[1]
        projected = self.input_conv(x.reshape(batch * steps, *x.shape[2:]), counter)
        projected = projected.reshape(batch, steps, *projected.shape[1:])
        h = torch.zeros(batch, self.units, projected.shape[3], projected.shape[4])
        c = torch.zeros_like(h)
        outputs = []
        for t in range(steps):
            gates = projected[:, t] + self.recurrent_conv(h, counter)
            i, f, g, o = torch.split(gates, self.units, dim=1)
            c = self.recurrent_act(f) * c + self.recurrent_act(i) * self.act(g)
            h = self.recurrent_act(o) * self.act(c)
            outputs.append(h)
        return torch.stack(outputs, dim=1)


class TimeDistributed(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.out_channels = inner.out_channels

    def forward(self, x, counter):
        batch, steps = x.shape[0], x.shape[1]
        y = self.inner(x.reshape(batch * steps, *x.shape[2:]), counter)
        return y.reshape(batch, steps, *y.shape[1:])


def channel_dim(x):
    """Return the dimension that contains channels: 1 for NCHW, 2 for NTCHW."""
    return 1 if x.dim() == 4 else 2


def depth_to_space(x, block):
    """tf.depthToSpace in NHWC (DCR order): the channel index is (row * block + column) * C + c."""
    n, channels, h, w = x.shape
    c = channels // (block * block)
    x = x.reshape(n, block, block, c, h, w).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(n, c, h * block, w * block)


def channels_last(x):
    return x.permute(0, 2, 3, 1) if x.dim() == 4 else x


def channels_first(x):
    return x.permute(0, 3, 1, 2) if x.dim() == 4 else x


class Network(nn.Module):
    """A tfjs-layers functional model, layer by layer, on NCHW tensors."""

    def __init__(self, topology):
        super().__init__()
        config = topology.get("model_config", topology)
        if "config" in config:
            config = config["config"]
        self.layers_config = config["layers"]
        self.input_names = [entry[0] for entry in config["input_layers"]]
        self.output_names = [entry[0] for entry in config["output_layers"]]
        self.modules_by_name = nn.ModuleDict()
        self.input_shapes = {}
        channels = {}
        for layer in self.layers_config:
            name, kind, cfg = layer["name"], layer["class_name"], layer["config"]
            inbound = [node[0] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
            in_channels = channels[inbound[0]] if inbound else None
            module = None
            if kind == "InputLayer":
                shape = cfg.get("batch_input_shape") or cfg.get("batchInputShape")
                self.input_shapes[name] = shape
                channels[name] = shape[-1]
                continue
            if kind == "Conv2D":
                module = Conv2D(cfg, in_channels)
            elif kind == "Conv2DTranspose":
                module = Conv2DTranspose(cfg, in_channels)
            elif kind == "Dense":
                module = Dense(cfg, in_channels)
            elif kind == "ConvLSTM2D":
                module = ConvLSTM2D(cfg, in_channels)
            elif kind == "TimeDistributed":
                inner = cfg["layer"]
                module = TimeDistributed({"Conv2D": Conv2D, "Conv2DTranspose": Conv2DTranspose}[inner["class_name"]](inner["config"], in_channels))
            if module is not None:
                self.modules_by_name[name] = module
                channels[name] = module.out_channels
            elif kind == "Concatenate":
                channels[name] = sum(channels[source] for source in inbound)
            elif kind == "DarkroomDepthToSpace":
                channels[name] = in_channels // (option(cfg, "block_size", "blockSize") ** 2)
            elif kind in ("Add", "DarkroomBroadcastAdd", "DarkroomBilinearUpsample", "GlobalAveragePooling2D", "LeakyReLU", "Activation", "Flatten", "Reshape"):
                channels[name] = in_channels
            else:
                raise ValueError(f"unsupported layer class {kind} ({name})")

    def forward(self, inputs, counter):
        values = dict(zip(self.input_names, inputs))
        for layer in self.layers_config:
            name, kind, cfg = layer["name"], layer["class_name"], layer["config"]
            if kind == "InputLayer":
                continue
            sources = [values[node[0]] for node in layer["inbound_nodes"][0]]
            x = sources[0]
            if name in self.modules_by_name:
                y = self.modules_by_name[name](x, counter)
            elif kind == "Add":
                y = sources[0]
                for other in sources[1:]:
                    y = y + other
            elif kind == "Concatenate":
                y = torch.cat(sources, dim=channel_dim(x))
            elif kind == "DarkroomBroadcastAdd":
                y = sources[0] + sources[1][:, :, None, None]
            elif kind == "DarkroomDepthToSpace":
                y = depth_to_space(x, option(cfg, "block_size", "blockSize"))
            elif kind == "DarkroomBilinearUpsample":
                # Half-pixel centres without corner alignment, as tf.image.resizeBilinear(x, size, false, true).
                y = F.interpolate(x, scale_factor=option(cfg, "scale"), mode="bilinear", align_corners=False)
            elif kind == "GlobalAveragePooling2D":
                y = x.mean(dim=(2, 3))
            elif kind == "LeakyReLU":
                y = F.leaky_relu(x, cfg.get("alpha", 0.3))
            elif kind == "Activation":
                y = activation(cfg["activation"])(x)
            elif kind == "Flatten":
                y = channels_last(x).reshape(x.shape[0], -1)
            elif kind == "Reshape":
                y = channels_first(x.reshape(x.shape[0], *cfg["target_shape"]))
            values[name] = y
        return [values[name] for name in self.output_names]


class FlopCounter:
    def __init__(self):
        self.flops = 0

    def add(self, flops):
        self.flops += int(flops)


def to_torch_shape(shape):
    """Channels-last [N, H, W, C] or [N, T, H, W, C] to PyTorch's channels-first order."""
    if len(shape) == 4:
        n, h, w, c = shape
        return [n, c, h, w]
    if len(shape) == 5:
        n, t, h, w, c = shape
        return [n, t, c, h, w]
    return list(shape)


def forward_flops(network, shape):
    counter = FlopCounter()
    with torch.no_grad():
        network([torch.zeros(to_torch_shape(shape))], counter)
    return counter.flops


def median_seconds(run, warmup, repeats):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def time_inference(network, spec, threads, warmup, repeats):
    """Forward passes over the tiles the pipeline feeds for one photo, per thread count."""
    network.eval()
    tiles = [torch.rand(to_torch_shape(shape)) for shape in spec["shapes"]]
    flops = sum(forward_flops(network, shape) for shape in spec["shapes"])
    counter = FlopCounter()

    def run():
        with torch.no_grad():
            for tile in tiles:
                network([tile], counter)

    results = {}
    for count in spec.get("threads", [1, threads]):
        torch.set_num_threads(count)
        seconds = median_seconds(run, warmup, repeats)
        results[str(count)] = {
            "secondsPerPhoto": seconds,
            "secondsPerMegapixel": seconds / spec["photoMegapixels"],
            "gflops": flops / seconds / 1e9,
        }
    return {"flopsPerPhoto": flops, "byThreads": results}


def loss_function(name):
    if name == "mse":
        return F.mse_loss
    if name == "bins":
        # Cross-entropy against soft bin targets, the mean over pixels, as chroma-bins.ts computes it.
        return lambda logits, targets: -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    raise ValueError(f"unsupported loss {name}")


def time_training(network, spec, threads, warmup, repeats):
    """One Adam step on a batch of the task's default size, per thread count."""
    network.train()
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    inputs = torch.rand(to_torch_shape(spec["inputShape"]))
    targets = torch.rand(to_torch_shape(spec["targetShape"]))
    if spec["loss"] == "bins":
        targets = targets / targets.sum(dim=1, keepdim=True)
    loss_of = loss_function(spec["loss"])
    counter = FlopCounter()

    def run():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(network([inputs], counter)[0], targets)
        loss.backward()
        optimizer.step()

    # Forward, input gradient and filter gradient: about three forward passes, as the project counts.
    flops = 3 * forward_flops(network, spec["inputShape"])
    batch = spec["inputShape"][0]
    results = {}
    for count in spec.get("threads", [1, threads]):
        torch.set_num_threads(count)
        seconds = median_seconds(run, warmup, repeats)
        results[str(count)] = {"secondsPerStep": seconds, "imagesPerSecond": batch / seconds, "gflops": flops / seconds / 1e9}
    return {"flopsPerStep": flops, "byThreads": results}


def time_video(network, spec, threads, warmup, repeats):
    """Frames per second of a scan's scoring: `passesPerClip` forward passes per clip of `framesPerClip` scored frames."""
    network.eval()
    clip = torch.rand(to_torch_shape(spec["clipShape"]))
    counter = FlopCounter()

    def run():
        with torch.no_grad():
            for _ in range(spec["passesPerClip"]):
                network([clip], counter)

    flops = spec["passesPerClip"] * forward_flops(network, spec["clipShape"])
    results = {}
    for count in spec.get("threads", [1, threads]):
        torch.set_num_threads(count)
        seconds = median_seconds(run, warmup, repeats)
        results[str(count)] = {"secondsPerClip": seconds, "framesPerSecond": spec["framesPerClip"] / seconds, "gflops": flops / seconds / 1e9}
    return {"flopsPerClip": flops, "byThreads": results}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", help="JSON spec file (default: stdin)")
    args = parser.parse_args()
    spec = json.load(open(args.spec) if args.spec else sys.stdin)

    torch.manual_seed(1)
    threads = spec["threads"]
    warmup = spec.get("warmup", 1)
    repeats = spec.get("repeats", 5)
    output = {"torch": torch.__version__, "threads": threads, "items": {}}
    for item in spec["items"]:
        network = Network(item["topology"])
        result = {}
        for part, timer in (("inference", time_inference), ("training", time_training), ("video", time_video)):
            if part in item:
                result[part] = timer(network, item[part], threads, warmup, repeats)
        output["items"][item["id"]] = result
    json.dump(output, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
