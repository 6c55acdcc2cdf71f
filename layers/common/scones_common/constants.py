"""Values shared by the functions and the model tools that must not pull in pydantic or Powertools.

`model.evaluate` reads these too, and `model/train.py` (which imports it) runs in the SageMaker
PyTorch container, where only the script's own requirements are installed.
"""

from __future__ import annotations

# The original workflow's confidence threshold: the filter step's default (FilterSettings) and the
# default of template.yaml's ConfidenceThreshold parameter.
DEFAULT_CONFIDENCE_THRESHOLD = 0.93
