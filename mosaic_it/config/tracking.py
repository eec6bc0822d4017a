"""Sections `tracking` (where MLflow writes) and `cost` (how device time is priced)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Dense bf16 tensor-core peaks (FLOP/s) from the vendors' datasheets, keyed by a substring of
# torch.cuda.get_device_name(); the longest matching key wins, so "H100 PCIe" beats "H100".
DEFAULT_PEAK_FLOPS: dict[str, float] = {
    "H200": 989e12,
    "H100": 989e12,
    "H100 PCIe": 756e12,
    "H800": 989e12,
    "A100": 312e12,
    "A800": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10G": 70e12,
    "A10": 125e12,
    "RTX 4090": 165e12,
    "RTX 3090": 71e12,
    "V100": 125e12,
    "T4": 65e12,
}


class TrackingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    tracking_uri: str = "sqlite:///mlflow.db"
    experiment_name: str = "mosaic-it"
    artifact_location: str | None = None  # None: MLflow's default for a new experiment
    log_model: bool = True  # log each trained arm as an MLflow model (pyfunc) in its train run
    register_as: str | None = "mosaic-it-{arm}"  # registered model per arm; null: log, do not register
    system_metrics: bool = False  # MLflow system metrics (CPU/GPU use, memory) for train and evaluate runs


class CostConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    usd_per_device_hour: float = Field(2.0, ge=0)
    peak_flops: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_PEAK_FLOPS))
