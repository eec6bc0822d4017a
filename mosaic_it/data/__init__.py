"""Ingesting, validating and splitting instruction data before augmentation."""
