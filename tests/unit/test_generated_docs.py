"""Generated documents in the repository stay true to the code."""

import json
from pathlib import Path

from shared.asyncapi import document

ROOT = Path(__file__).resolve().parents[2]


def test_docs_asyncapi_json_is_the_document_the_code_generates():
    # Regenerate with: piaojue asyncapi > docs/asyncapi.json
    assert json.loads((ROOT / "docs/asyncapi.json").read_text()) == json.loads(json.dumps(document()))


def test_every_event_type_has_a_channel_and_a_consumer_queue():
    doc = document()
    for channel in doc["channels"]:
        receivers = [o for o in doc["operations"].values()
                     if o["action"] == "receive" and o["channel"]["$ref"] == f"#/channels/{channel}"]
        assert receivers, f"nobody consumes {channel}: it would be published to no queue"
