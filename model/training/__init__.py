"""Training the default model: an ImageNet EfficientNet-Lite0 fine-tuned end to end on CPU.

One concern per module, in the order a run uses them:

- `data`: the labelled images as the server sees them (32×32), folds, and augmentation;
- `network`: Lite0 with its new two-class head, upsampling inside the graph;
- `loop`: the optimiser and schedule, and batched prediction;
- `calibration`: temperature scaling and the confidence threshold, from out-of-fold logits;
- `export`: the ONNX file and metadata.json the server loads;
- `crossval`: k-fold cross-validation of a recipe;
- `pipeline`: a whole training run (what `scones train` and SageMaker script mode call).

Only this package imports torch; serving (`model.inference`) needs onnxruntime, numpy and Pillow.
"""
