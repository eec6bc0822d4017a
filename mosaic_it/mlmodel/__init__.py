"""Trained arms as MLflow models: logged with their run (log.py), registered under
`tracking.register_as`, promoted by alias (promote.py) and loaded back by `models:/` URI (load.py)."""
