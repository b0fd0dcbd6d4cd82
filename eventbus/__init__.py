"""Salesforce Pub/Sub API wire definitions (gRPC service ``eventbus.v1.PubSub``).

``pubsub_api.proto`` is written from the interface Salesforce publishes; the ``*_pb2*`` modules are
generated from it by ``make pubsub-stubs`` and checked in. The sync's change-event listener and the
bundled emulator's Pub/Sub server both build on them, so this package imports neither.
"""
