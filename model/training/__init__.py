"""Training the default model: ImageNet EfficientNet-Lite fine-tuned end to end on the CPU.

One concern per module, in the order a run uses them:

- `data`: the labelled images as the server sees them (32×32), splits and folds, and augmentation;
- `network`: the backbone with its new head, upsampling inside the graph, and the served wrapper
  (members and mirror image averaged, softmax of logits / temperature);
- `loop`: a recipe's optimiser and schedule, and batched prediction;
- `calibration`: temperature scaling and the confidence threshold, from out-of-fold logits;
- `crossval`: k-fold cross-validation of one recipe (model/crossval/<recipe>.json);
- `recipes` and `candidates`: what was cross-validated, what could ship, and its figures;
- `export`: the ONNX file and metadata.json the server loads, checked against torch;
- `pipeline`: a whole training run (what `scones train` and SageMaker script mode call).

Only this package imports torch; serving (`model.inference`) needs onnxruntime, numpy and Pillow.
"""
