"""The AsyncAPI document of the system, generated from the topology and the event contracts."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from shared.contracts import EVENTS, Envelope
from shared.messaging import DEAD_EXCHANGE, EVENTS_EXCHANGE, QUEUES


def document() -> dict[str, Any]:
    payloads = sorted(EVENTS.items())
    _, schemas = models_json_schema([(m, "validation") for _, m in payloads] + [(Envelope, "validation")],
                                    ref_template="#/components/schemas/{model}")
    channels, operations, messages = {}, {}, {}
    for (type_, version), model in payloads:
        name = f"{type_}.v{version}"
        messages[name] = {
            "name": type_,
            "title": f"{type_} v{version}",
            "summary": (model.__doc__ or "").strip().split("\n\n")[0],
            "contentType": "application/json",
            "headers": {"type": "object", "properties": {"x-version": {"const": version}, "x-jurisdiction": {"type": "string"}}},
            "payload": {"allOf": [{"$ref": "#/components/schemas/Envelope"},
                                  {"properties": {"type": {"const": type_}, "version": {"const": version},
                                                  "data": {"$ref": f"#/components/schemas/{model.__name__}"}}}]},
        }
        channels.setdefault(type_, {"messages": {}})["messages"][name] = {"$ref": f"#/components/messages/{name}"}
        channels[type_] |= {
            "address": type_,
            "bindings": {"amqp": {"is": "routingKey", "exchange": {"name": EVENTS_EXCHANGE.name, "type": "topic",
                                                                    "durable": True, "autoDelete": False}}},
        }
        producer = type_.split(".")[0]
        operations[f"{producer}.publishes.{type_}"] = {
            "action": "send", "channel": {"$ref": f"#/channels/{type_}"},
            "summary": f"{producer} publishes from its outbox (persistent, publisher confirms)",
        }
        for queue, keys in QUEUES.items():
            if type_ in keys:
                operations[f"{queue}.receives.{type_}"] = {
                    "action": "receive", "channel": {"$ref": f"#/channels/{type_}"},
                    "summary": f"consumed from quorum queue {queue}; dead letters to {DEAD_EXCHANGE.name} → {queue}.dead",
                    "bindings": {"amqp": {"ack": True}},
                }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "piaojue events (票决)", "version": "1",
                 "description": "Every event travels on the topic exchange piaojue.events with its type as routing key."},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas["$defs"]},
    }
