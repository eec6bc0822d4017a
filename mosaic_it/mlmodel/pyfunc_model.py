"""The MLflow pyfunc model a trained arm is logged as (MLflow "models from code": this file is
stored with the model and run on load, so nothing is pickled).

Its one artifact, `model`, is the training output folder: a PEFT adapter (whose config names its
base model) or full weights, with the tokenizer. `predict` takes a frame with a `prompt` column,
or a list of prompts, and returns greedy answers rendered with the arm's prompt format.
"""
from __future__ import annotations

from typing import Any

import mlflow
from mlflow.pyfunc import PythonModel


class TrainedArm(PythonModel):
    # The signature is given explicitly at logging (log.py). Without this switch (the one MLflow's
    # own ChatModel sets) MLflow inspects `predict`'s type hints and warns in every process.
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        from mosaic_it.evaluate.model import load_model

        self.model, self.tokenizer = load_model(context.artifacts["model"], "auto")
        config = context.model_config or {}
        self.prompt_format = config.get("prompt_format", "chat_template")
        self.max_new_tokens = int(config.get("max_new_tokens", 256))

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        from mosaic_it.config.evaluate import GenerationConfig
        from mosaic_it.evaluate.generate import generate

        prompts = list(model_input["prompt"]) if hasattr(model_input, "columns") else list(model_input)
        max_new_tokens = int((params or {}).get("max_new_tokens", self.max_new_tokens))
        cfg = GenerationConfig(max_new_tokens=max_new_tokens)
        return generate(self.model, self.tokenizer, prompts, cfg, desc="mlflow predict",
                        prompt_format=self.prompt_format)


mlflow.models.set_model(TrainedArm())
