"""One MLflow parent run per study, found again by the study's id, so that every sitting of a
resumed study (CLI, each DVC cell stage, each Prefect flow run) nests its train/evaluate runs
under the same parent; each cell's runs carry its seed and arm as tags."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from mosaic_it import mlflow_store
from mosaic_it import tracking as track
from mosaic_it.config import Params
from mosaic_it.hashing import hash_paths, hash_text
from mosaic_it.study import configs

STUDY_ID_TAG = "mosaic_it.study_id"


def study_id(params: Params) -> str:
    """Same settings and same source records: same study, however many sittings it takes."""
    settings = "\n".join(configs.settings(section) for section in
                         (params.study, params.augment, params.train, params.evaluate))
    return hash_text(settings + hash_paths([params.study.records]))[:16]


def cell_tags(seed: int, arm: str) -> contextlib.AbstractContextManager[None]:
    return track.scoped_tags({"mosaic_it.seed": str(seed), "mosaic_it.arm": arm})


@contextlib.contextmanager
def study_run(params: Params, tags: dict[str, str] | None = None) -> Iterator[Any]:
    """The study's parent run (reopened when it exists), or None when tracking is off."""
    cfg = params.tracking
    if not cfg.enabled:
        yield None
        return
    import mlflow

    mlflow.set_tracking_uri(mlflow_store.absolute_uri(cfg.tracking_uri))
    sid = study_id(params)
    active = mlflow.active_run()
    if active is not None and active.data.tags.get(STUDY_ID_TAG) == sid:
        yield active
        return
    experiment_id = active.info.experiment_id if active is not None else track._experiment_id(cfg)
    found = mlflow.search_runs(experiment_ids=[experiment_id], filter_string=f"tags.`{STUDY_ID_TAG}` = '{sid}'",
                               order_by=["attributes.start_time DESC"], max_results=1, output_format="list")
    if found:
        run = mlflow.start_run(run_id=found[0].info.run_id, nested=active is not None)
    else:
        run = mlflow.start_run(run_name="study", experiment_id=experiment_id, nested=active is not None,
                               tags={"mosaic_it.stage": "study", STUDY_ID_TAG: sid})
        track.log_params({"study": params.study.model_dump()})
    if tags:
        mlflow.set_tags(tags)
    try:
        yield run
    except KeyboardInterrupt:
        mlflow.end_run(status="KILLED")
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")
