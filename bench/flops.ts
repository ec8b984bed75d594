/**
 * FLOPs of one forward pass of a tfjs-layers model at a concrete input shape, counted the way
 * bench/torch_reference.py counts its own layers, so the two sides' GFLOP/s divide the same
 * number: two per multiply-add of convolutions, transposed convolutions, dense layers and the
 * ConvLSTM gate convolutions. Element-wise layers (add, activations, resizing) are left out.
 */
import type * as tfl from '@tensorflow/tfjs-layers';

type Shape = readonly number[];

interface LayerLike {
  readonly name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  computeOutputShape(inputShape: Shape | Shape[]): unknown;
  readonly inboundNodes: readonly { readonly inboundLayers: readonly { readonly name: string }[] }[];
}

function pair(value: unknown): [number, number] {
  return Array.isArray(value) ? [value[0] as number, value[1] as number] : [value as number, value as number];
}

/** Product of the leading dimensions before the last three (batch, or batch and time). */
function leading(shape: Shape): number {
  return shape.slice(0, -3).reduce((product, size) => product * size, 1);
}

/** FLOPs of one layer given its concrete input and output shapes, channels last. */
export function layerFlops(className: string, config: Record<string, unknown>, input: Shape, output: Shape): number {
  switch (className) {
    case 'Conv2D': {
      const [kh, kw] = pair(config.kernel_size ?? config.kernelSize);
      const [height, width, channels] = output.slice(-3);
      return 2 * kh * kw * input[input.length - 1] * channels * height * width * leading(output);
    }
    case 'Conv2DTranspose': {
      // Each input position scatters one kernel, so the work scales with the input's positions.
      const [kh, kw] = pair(config.kernel_size ?? config.kernelSize);
      const [height, width, channels] = input.slice(-3);
      return 2 * kh * kw * channels * output[output.length - 1] * height * width * leading(input);
    }
    case 'Dense': {
      const rows = input.slice(0, -1).reduce((product, size) => product * size, 1);
      return 2 * rows * input[input.length - 1] * output[output.length - 1];
    }
    case 'ConvLSTM2D': {
      // Input and recurrent convolutions each make the four gates at every step.
      const [kh, kw] = pair(config.kernel_size ?? config.kernelSize);
      const units = output[output.length - 1];
      const [height, width] = output.slice(-3, -1);
      return 2 * kh * kw * (input[input.length - 1] + units) * 4 * units * height * width * leading(output);
    }
    default:
      return 0;
  }
}

/**
 * Forward FLOPs of `model` for an input of `inputShape` (batch first, channels last). Shapes
 * follow the layers in topological order through each layer's computeOutputShape.
 */
export function countForwardFlops(model: tfl.LayersModel, inputShape: Shape): number {
  const shapes = new Map<string, Shape>();
  let flops = 0;

  for (const layer of model.layers as unknown as LayerLike[]) {
    const inbound = layer.inboundNodes[0]?.inboundLayers ?? [];
    if (inbound.length === 0) {
      shapes.set(layer.name, inputShape);
      continue;
    }

    const inputs = inbound.map((source) => shapes.get(source.name)!);
    const output = layer.computeOutputShape(inputs.length === 1 ? inputs[0] : inputs) as number[];
    shapes.set(layer.name, output);

    const className = layer.getClassName();
    if (className === 'TimeDistributed') {
      const inner = (layer as unknown as { layer: LayerLike }).layer;
      flops += layerFlops(inner.getClassName(), inner.getConfig(), inputs[0], output);
    } else {
      flops += layerFlops(className, layer.getConfig(), inputs[0], output);
    }
  }
  return flops;
}
