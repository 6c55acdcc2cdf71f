"""Values shared by the functions and the model tools that must not pull in pydantic or Powertools.

`model.evaluate` reads these too, and `model/train.py` (which imports it) runs in the SageMaker
PyTorch container, where only the script's own requirements are installed.
"""

from __future__ import annotations

# The confidence threshold fitted for the shipped model on its out-of-fold predictions
# (model/artifacts/metadata.json, "calibration"; model/README.md): the filter step's default
# (FilterSettings) and the default of template.yaml's ConfidenceThreshold parameter: the lowest at
# which at most 0.5 % of the decided images are wrong out of fold (the course workflow used 0.93).
DEFAULT_CONFIDENCE_THRESHOLD = 0.955
