"""Memory plan: per-device memory of a training configuration, estimated before anything loads."""
