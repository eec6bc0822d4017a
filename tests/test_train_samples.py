"""Training's sample answers come from evaluation's decoder: the answers HF generate gives each
prompt alone (the path they used to take), with the model handed back as it came."""
from __future__ import annotations

import torch

from mosaic_it.train.data import render_prompt
from mosaic_it.train.generate import sample_generations

PROMPTS = ["Give three tips for staying healthy.", "Write a haiku about the sea.", "Name a colour."]


def lora_model(path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    # Random B as well as A: a LoRA that is not the identity, so a path that skipped it would show.
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    return get_peft_model(base, config)


def alone(model, tokenizer, prompt: str, max_new_tokens: int) -> str:
    ids = tokenizer(render_prompt(prompt, tokenizer, "chat_template"), add_special_tokens=False,
                    return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


def test_samples_equal_hf_generate_per_prompt_and_leave_model_and_tokenizer_as_they_were(tiny_llama_dir, embedded_tokenizer):
    model = lora_model(tiny_llama_dir)
    model.train()
    sides = (embedded_tokenizer.padding_side, embedded_tokenizer.truncation_side)
    samples = sample_generations(model, embedded_tokenizer, PROMPTS, "chat_template", 12)
    assert model.training and (embedded_tokenizer.padding_side, embedded_tokenizer.truncation_side) == sides
    assert [s["prompt"] for s in samples] == PROMPTS
    model.eval()
    expected = [alone(model, embedded_tokenizer, prompt, 12) for prompt in PROMPTS]
    assert [s["response"] for s in samples] == expected
    assert len(set(expected)) >= 2  # real answers that differ by prompt
    model.base_model.disable_adapter_layers()
    assert [alone(model, embedded_tokenizer, p, 12) for p in PROMPTS] != expected  # the LoRA changes them


def test_no_prompts_or_no_tokens_generate_nothing(tiny_llama_dir, embedded_tokenizer):
    model = lora_model(tiny_llama_dir)
    assert sample_generations(model, embedded_tokenizer, [], "chat_template", 12) == []
    assert sample_generations(model, embedded_tokenizer, PROMPTS, "chat_template", 0) == []
