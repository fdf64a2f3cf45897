"""vw2's Ray bridge: a ZeroMQ ROUTER that vw2 drivers (Node, DEALER) talk to, submitting one Ray task per
stage invocation. Protocol: protocol.py; the Ray task: task.py; the server: bridge.py; CLI: __main__.py."""
