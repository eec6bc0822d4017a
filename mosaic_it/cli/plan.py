"""`mosaic-it plan`: per-device memory of the train section's configuration, before launching it."""
from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from mosaic_it.cli.common import ParamsOption, SetOption
from mosaic_it.config import DEFAULT_PARAMS, load_params


def register(app: typer.Typer) -> None:
    @app.command("plan")
    def plan(
        device: Annotated[str, typer.Option("--device", help="cuda or cpu: where the run will train.")] = "cuda",
        memory_gib: Annotated[float | None, typer.Option("--memory-gib", help="Memory per device; default: this machine's GPU (cuda) or available RAM (cpu).", show_default=False)] = None,
        world_size: Annotated[int, typer.Option("--world-size", min=1, help="Processes (GPUs) in the run.")] = 1,
        sharding: Annotated[str | None, typer.Option("--sharding", help="none (DDP replicas) or fsdp; default: fsdp if train.distributed is fsdp and --world-size > 1.", show_default=False)] = None,
        params: ParamsOption = DEFAULT_PARAMS,
        overrides: SetOption = None,
    ) -> None:
        """Estimate weights, gradients, optimizer state and activations per device; exit 1 if it will not fit."""
        from mosaic_it.errors import ConfigError
        from mosaic_it.plan.estimate import GIB, estimate
        from mosaic_it.plan.fit import cheapest_fit, device_capacity, setup_from_config
        from mosaic_it.plan.shape import load_shape

        if device not in ("cuda", "cpu") or sharding not in (None, "none", "fsdp"):
            raise ConfigError("--device is cuda or cpu, --sharding is none or fsdp")
        cfg = load_params(params, overrides).train
        if sharding is None:
            sharding = "fsdp" if cfg.distributed == "fsdp" and world_size > 1 else "none"
        bf16 = device == "cuda" and cfg.dtype != "fp32" or cfg.dtype == "bf16"
        setup = setup_from_config(cfg, device, bf16, world_size, sharding)
        shape = load_shape(cfg.model)
        capacity = int(memory_gib * GIB) if memory_gib is not None else device_capacity(device)
        if cfg.gradient_checkpointing == "auto":  # as train resolves it: on only when needed (CUDA)
            needed = device == "cuda" and estimate(shape, setup).peak > capacity
            setup = dataclasses.replace(setup, gradient_checkpointing=needed)
        result = estimate(shape, setup)
        typer.echo(f"model {cfg.model or 'embedded'}: {result.params_total / 1e9:.3f} B parameters, "
                   f"{result.params_trainable / 1e6:.2f} M trainable ({cfg.method}, {setup.dtype}, "
                   f"quantization {cfg.quantization}); micro-batch {cfg.batch_size} x {cfg.max_length} tokens, "
                   f"gradient checkpointing {'on' if setup.gradient_checkpointing else 'off'}, "
                   f"{world_size} x {device}, sharding {sharding}")
        names = ("weights", "gradients", "optimizer", "activations", "overhead", "gathered", "peak")
        for name in (n for n in names if n != "gathered" or result.gathered):
            # Gradients appear as backward frees activations: only the larger of the two is held.
            why = "  (gradients and activations: the larger only)" if name == "peak" else ""
            typer.echo(f"  {name:<12}{result.as_dict()[name] / GIB:9.2f} GiB{why}")
        typer.echo(f"  {'available':<12}{capacity / GIB:9.2f} GiB")
        if result.peak <= capacity:
            typer.echo("fits")
            return
        change = cheapest_fit(shape, setup, capacity, cfg.grad_accum)
        typer.echo(f"does not fit; cheapest change that fits: {change}" if change else
                   "does not fit; no single change fits, use more devices")
        raise typer.Exit(1)
