"""The serving stages: publish one dataset, roll one back (light: the DAG files import it)."""

from __future__ import annotations

from serving.datasets import DATASETS
from shopml.catalog import OPS_PUBLISH_AUDIT
from shopml.stages import Stage

PUBLISH = {
    name: Stage(
        "serving.publish:publish_dataset",
        reads=(served.table, *filter(None, [served.requires_feed])),
        writes=(OPS_PUBLISH_AUDIT,),
    )
    for name, served in DATASETS.items()
}
ROLLBACK = Stage("serving.publish:rollback_dataset", writes=(OPS_PUBLISH_AUDIT,))
