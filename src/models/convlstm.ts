/**
 * Faster ConvLSTM2D steps: one convolution per step for all four gates instead of four.
 *
 * tfjs-layers 4.22 splits the kernel and the recurrent kernel into the gates i, f, c and o at
 * every time step, then runs eight convolutions and four bias additions per step, each with a
 * quarter of the output channels. A convolution with the whole kernel gives the four gates'
 * pre-activations side by side in its channels, in the same order as that split, so one input
 * convolution, one recurrent convolution and one split compute the same step. The gain is small
 * because the split costs part of what the fewer convolutions save: a video-model training step
 * took 0 to 15 % less time in the runs that BENCHMARKS.md lists.
 *
 * The cell class is not exported, so importing this module replaces `call` on the prototype of
 * the cell that `tfl.layers.convLstm2dCell` builds. That keeps the class name, configuration and
 * weights of saved models unchanged, so stock tfjs still loads them. Cells with dropout or
 * channels-first data keep the stock step.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

/** The fields of tfjs-layers' ConvLSTM2DCell (4.22) that a step reads. */
interface ConvLstmCellFields {
  kernel: { read(): tf.Tensor };
  recurrentKernel: { read(): tf.Tensor };
  bias: { read(): tf.Tensor } | null;
  useBias: boolean;
  strides: number | [number, number];
  padding: 'same' | 'valid';
  dataFormat: string;
  dilationRate: number | [number, number];
  dropout: number;
  recurrentDropout: number;
  activation: { apply(x: tf.Tensor): tf.Tensor };
  recurrentActivation: { apply(x: tf.Tensor): tf.Tensor };
}

type CellCall = (this: ConvLstmCellFields, inputs: tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor[];

interface CellPrototype {
  call: CellCall;
}

const GATES = 4;

/** The prototype of tfjs-layers' ConvLSTM2DCell, whose `call` this module replaces. */
const CELL_PROTOTYPE = Object.getPrototypeOf(tfl.layers.convLstm2dCell({ filters: 1, kernelSize: 1 })) as CellPrototype;

/** Runs one ConvLSTM step with both kernels whole, as the stock step computes it gate by gate. */
function fusedStep(cell: ConvLstmCellFields, x: tf.Tensor, hPrevious: tf.Tensor, cPrevious: tf.Tensor): tf.Tensor[] {
  return tf.tidy(() => {
    const inputPart = tf.conv2d(x as tf.Tensor4D, cell.kernel.read() as tf.Tensor4D, cell.strides, cell.padding, 'NHWC', cell.dilationRate);
    const recurrentPart = tf.conv2d(hPrevious as tf.Tensor4D, cell.recurrentKernel.read() as tf.Tensor4D, 1, 'same', 'NHWC');
    let gates = tf.add(inputPart, recurrentPart);
    if (cell.useBias && cell.bias !== null) gates = tf.add(gates, cell.bias.read());

    const [inputGate, forgetGate, candidate, outputGate] = tf.split(gates, GATES, 3) as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
    const i = cell.recurrentActivation.apply(inputGate);
    const f = cell.recurrentActivation.apply(forgetGate);
    const c = tf.add(tf.mul(f, cPrevious), tf.mul(i, cell.activation.apply(candidate)));
    const h = tf.mul(cell.recurrentActivation.apply(outputGate), cell.activation.apply(c));
    return [h, h, c];
  });
}

function installFusedStep(): void {
  if ((CELL_PROTOTYPE.call as { fused?: boolean }).fused === true) return;

  const stockCall = CELL_PROTOTYPE.call;
  const call: CellCall = function (this: ConvLstmCellFields, inputs, kwargs) {
    const plain = this.dropout === 0 && this.recurrentDropout === 0 && this.dataFormat === 'channelsLast';
    if (!plain || !Array.isArray(inputs) || inputs.length !== 3) return stockCall.call(this, inputs, kwargs);
    return fusedStep(this, inputs[0]!, inputs[1]!, inputs[2]!);
  };
  Object.assign(call, { fused: true, stock: stockCall });
  CELL_PROTOTYPE.call = call;
}

installFusedStep();

/**
 * Runs `compute` with tfjs-layers' own ConvLSTM2D step, so that tests can compare the two.
 * Every ConvLSTM2D layer in the thread runs the stock step while `compute` runs, and the fused
 * one again afterwards.
 */
export function withStockConvLstmStep<T>(compute: () => T): T {
  const fused = CELL_PROTOTYPE.call;
  CELL_PROTOTYPE.call = (fused as { stock?: CellCall }).stock ?? fused;
  try {
    return compute();
  } finally {
    CELL_PROTOTYPE.call = fused;
  }
}
