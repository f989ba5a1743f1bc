"""The Segment-compatible HTTP collector."""

from collectors.http.app import create_app
from collectors.http.producer import EventProducer, KafkaEventProducer

__all__ = ["EventProducer", "KafkaEventProducer", "create_app"]
