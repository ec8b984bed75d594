import type { Logger } from '../log.js';
import { type ImageDataset, loadImageDataset } from '../dataset/folder.js';
import { DarkroomError } from '../errors.js';
import { latentForSeed, sampleImages } from '../generate/generate.js';
import { argmaxRows, buildClassifier, classify, CLASSIFIER_FEATURES, type ImageClassifier, type LabelledImages, trainClassifier } from '../models/classifier.js';
import type { LoadedGenerator } from '../models/generator-storage.js';
import { ProgressBar } from '../progress.js';
import { featureStatistics, frechetDistance } from './frechet.js';

export interface GeneratorEvalOptions {
  /** Real images held out from the generator's training: the test set. */
  readonly real: string;
  /** Real images the judging classifier trains on; the generator's own training folder by default. */
  readonly realTrain: string;
  readonly perClass: number;
  readonly classifierSteps: number;
  readonly seed: number;
}

export interface GeneratorEvalResult {
  readonly model: string;
  readonly kind: string;
  readonly classes: readonly string[];
  readonly realTrainImages: number;
  readonly realTestImages: number;
  readonly generatedImages: number;
  /** Accuracy on the real test images of a classifier trained on real images: the reference. */
  readonly realOnRealAccuracy: number;
  /** The real-trained classifier on generated images: mean top probability. */
  readonly meanConfidence: number;
  /** Share of generated images that the real-trained classifier puts in the class they were made for. */
  readonly classAgreement: number;
  /** Share of generated images per class, as the real-trained classifier predicts them. */
  readonly predictedShares: readonly number[];
  /** Entropy of `predictedShares` over its maximum, log(classes): 1 when the classes are even. */
  readonly spread: number;
  /** Fréchet distance between real test and generated images in the classifier's feature space. */
  readonly frechetDistance: number;
  /** Train on synthetic, test on real: a classifier trained only on generated images, on the real test images. */
  readonly syntheticOnRealAccuracy: number;
}

/**
 * Judges a generator by what a classifier learns from its images: confidence and class spread
 * of a classifier trained on real images, the Fréchet distance in its feature space, and the
 * accuracy on real images of a classifier trained only on generated ones.
 */
export async function evaluateGenerator(loaded: LoadedGenerator, options: GeneratorEvalOptions, log: Logger): Promise<GeneratorEvalResult> {
  const { imageSize, channels, classes } = loaded.metadata.generator;
  if (classes.length < 2) {
    throw new DarkroomError('USAGE', `${loaded.dir} was trained without classes; eval generator judges class-conditional models, whose images have a class to check`);
  }
  const load = (dir: string): Promise<ImageDataset> => loadImageDataset(dir, { size: imageSize, channels, classes }, log);
  // The test folder first: it is the smaller one, so a wrong folder fails before a long read.
  const realTest = await load(options.real);
  const realTrain = await load(options.realTrain);

  log.info(`Training the judging classifier on ${realTrain.count} real images (${options.classifierSteps} steps)`);
  const judge = train(realTrain, classes.length, options, 'real');
  const realOnReal = accuracy(judge, realTest);
  log.info(`Real-on-real accuracy: ${(100 * realOnReal).toFixed(1)} % on ${realTest.count} test images`);

  const generated = generate(loaded, options);
  const judged = classify(judge, generated.images, generated.count, imageSize, channels);
  const predicted = argmaxRows(judged.probabilities, classes.length);
  let confidence = 0;
  let agreement = 0;
  const counts = new Array<number>(classes.length).fill(0);
  for (let index = 0; index < generated.count; index++) {
    confidence += judged.probabilities[index * classes.length + predicted[index]];
    if (predicted[index] === generated.labels[index]) agreement++;
    counts[predicted[index]]++;
  }
  const shares = counts.map((count) => count / generated.count);
  const spread = -shares.reduce((sum, share) => sum + (share > 0 ? share * Math.log(share) : 0), 0) / Math.log(classes.length);

  const realFeatures = classify(judge, realTest.images, realTest.count, imageSize, channels).features;
  const distance = frechetDistance(featureStatistics(realFeatures, realTest.count, CLASSIFIER_FEATURES), featureStatistics(judged.features, generated.count, CLASSIFIER_FEATURES));

  log.info(`Training a classifier on the ${generated.count} generated images only (${options.classifierSteps} steps)`);
  const synthetic = train(generated, classes.length, options, 'synthetic');
  const syntheticOnReal = accuracy(synthetic, realTest);

  return {
    model: loaded.dir,
    kind: loaded.metadata.task,
    classes,
    realTrainImages: realTrain.count,
    realTestImages: realTest.count,
    generatedImages: generated.count,
    realOnRealAccuracy: realOnReal,
    meanConfidence: confidence / generated.count,
    classAgreement: agreement / generated.count,
    predictedShares: shares,
    spread,
    frechetDistance: distance,
    syntheticOnRealAccuracy: syntheticOnReal,
  };
}

function train(data: LabelledImages, classCount: number, options: GeneratorEvalOptions, label: string): ImageClassifier {
  const classifier = buildClassifier(data.size, data.channels, classCount, options.seed);
  const progress = new ProgressBar({ label: `classifier (${label})`, total: options.classifierSteps, unit: 'step' });
  let lossSum = 0;
  trainClassifier(classifier, data, options.classifierSteps, options.seed, (step, loss) => {
    lossSum += loss;
    if ((step + 1) % 20 === 0 || step + 1 === options.classifierSteps) progress.update(step + 1, { loss: lossSum / (step + 1) });
  });
  progress.finish();
  return classifier;
}

function accuracy(classifier: ImageClassifier, data: LabelledImages): number {
  const predicted = argmaxRows(classify(classifier, data.images, data.count, data.size, data.channels).probabilities, classifier.classCount);
  let correct = 0;
  for (let index = 0; index < data.count; index++) if (predicted[index] === data.labels[index]) correct++;
  return correct / data.count;
}

/** `perClass` images of every class, from seeds options.seed, options.seed + 1, ... as `generate` draws them. */
function generate(loaded: LoadedGenerator, options: GeneratorEvalOptions): LabelledImages {
  const { imageSize, channels, classes, latentDim } = loaded.metadata.generator;
  const count = options.perClass * classes.length;
  const pixels = imageSize * imageSize * channels;
  const images = new Float32Array(count * pixels);
  const labels = Int32Array.from({ length: count }, (_, index) => index % classes.length);
  const batchSize = 250;
  const progress = new ProgressBar({ label: `generate ${loaded.metadata.task}`, total: count, unit: 'image' });
  for (let start = 0; start < count; start += batchSize) {
    const size = Math.min(batchSize, count - start);
    const latent = new Float32Array(size * latentDim);
    for (let index = 0; index < size; index++) latent.set(latentForSeed(options.seed + start + index, latentDim), index * latentDim);
    images.set(sampleImages(loaded, latent, labels.subarray(start, start + size)), start * pixels);
    progress.update(start + size);
  }
  progress.finish();
  return { count, size: imageSize, channels, images, labels };
}

/** Renders the result as the table that `darkroom eval generator` prints. */
export function formatGeneratorEval(result: GeneratorEvalResult): string {
  const percent = (value: number): string => `${(100 * value).toFixed(1)} %`;
  const lines = [
    `Generator ${result.model} (${result.kind}), ${result.classes.length} classes`,
    `  real images: ${result.realTrainImages} to train the judging classifier, ${result.realTestImages} held out to test`,
    `  generated images: ${result.generatedImages}`,
    '',
    `  real-trained classifier, accuracy on real test images (reference)  ${percent(result.realOnRealAccuracy)}`,
    `  its mean confidence on generated images                           ${percent(result.meanConfidence)}`,
    `  generated images it puts in the class they were made for          ${percent(result.classAgreement)}`,
    `  spread over classes (1 = even)                                    ${result.spread.toFixed(3)}`,
    `  Frechet distance, real test vs generated, in its feature space    ${result.frechetDistance.toFixed(2)}`,
    `  train on synthetic, test on real: accuracy                        ${percent(result.syntheticOnRealAccuracy)}`,
    '',
    '  class shares as the classifier sees the generated images:',
    ...result.classes.map((name, index) => `    ${name.padEnd(12)} ${percent(result.predictedShares[index])}`),
  ];
  return lines.join('\n');
}
