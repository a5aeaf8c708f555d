"""Hold a DAG's tasks to the tables they declare, from the lake's lineage log (``SHOPML_LINEAGE_LOG``)."""

from __future__ import annotations

import json
from pathlib import Path

DAGS_DIR = Path(__file__).resolve().parents[1] / "dags"


def undeclared(dag_id: str, lineage_log: Path) -> dict[str, dict[str, set[str]]]:
    """Per task, the tables it read or wrote beyond the Asset inlets and outlets it declares.

    Reading a table it writes is fine (a merge reads its target); a read or a write of any other table is not.
    """
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS_DIR)).dags[dag_id]
    declared = {task.task_id: ({a.name for a in task.inlets}, {a.name for a in task.outlets}) for task in dag.tasks}
    done: dict[str, dict[str, set[str]]] = {}
    for line in lineage_log.read_text().splitlines():
        entry = json.loads(line)
        done.setdefault(entry["task"], {"read": set(), "write": set()})[entry["kind"]].add(entry["table"])
    assert done, f"nothing in {lineage_log}"
    assert set(done) <= set(declared), f"lake access outside {dag_id}'s tasks: {set(done) - set(declared)}"
    missing = {}
    for task, tables in done.items():
        inlets, outlets = declared[task]
        extra = {"read": tables["read"] - inlets - outlets, "write": tables["write"] - outlets}
        if extra["read"] or extra["write"]:
            missing[task] = extra
    return missing
