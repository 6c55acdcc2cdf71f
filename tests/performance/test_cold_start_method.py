"""The cold-start method measures what Lambda runs: the upload's event, and a floor free of project code."""

from __future__ import annotations

import ast

from bench.cold_start import FLOOR_HANDLER, upload_rule_input
from harness.local.template import read_stack
from scones_common.models import ImageRef


def test_serialize_is_measured_on_the_input_the_upload_rule_sends() -> None:
    # Given the state machine input that ImageUploadedRule renders for events/s3_object_created.json
    event = upload_rule_input(read_stack())
    # Then it names the object version, so the first invocation records the delivery (DynamoDB ledger),
    # as every upload's does; the hand-made events/serialize_image_data.json would skip that
    ref = ImageRef.model_validate(event)
    assert ref.object_version is not None
    assert event["s3_key_encoding"] == "url"


def test_the_floor_handler_uses_none_of_the_projects_code_nor_pydantic() -> None:
    tree = ast.parse(FLOOR_HANDLER.read_text())
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for name in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""])
    }
    assert imported == {"io", "typing", "boto3", "aws_lambda_powertools", "PIL"}
