"""slfm_node parameters of a replay, shared by the offline and the live mode.

Both modes start from the same parameter file (default: the package's config/slfm.yaml) and
the same overrides, so the in-process pipeline and the real node run with identical settings.
The live mode hands the resolved values to the node as a parameter file of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from slfm_ros.core.errors import ConfigError
from slfm_ros.nodes.param_spec import ParamValue
from slfm_ros.nodes.slfm_params import SLFM_NODE


def _node_section(data: Any, node: str) -> dict[str, Any]:
    """Merged ``ros__parameters`` of the keys that apply to ``node`` (``/**``, ``/**/node``,
    ``node``, ``/node``), wildcard keys first."""
    if not isinstance(data, dict):
        return {}
    merged: dict[str, Any] = {}
    for key in ("/**", f"/**/{node}", node, f"/{node}"):
        body = data.get(key)
        if isinstance(body, dict) and isinstance(body.get("ros__parameters"), dict):
            merged.update(body["ros__parameters"])
    return merged


def load_node_params(
    params_file: str | Path | None, overrides: Mapping[str, Any] | None = None
) -> dict[str, ParamValue]:
    """slfm_node's parameter values from ``params_file`` (None: the package default) updated by
    ``overrides``; ConfigError for unknown names or wrong types."""
    from slfm_ros.nodes.launch_description import default_params_file

    path = Path(params_file) if params_file else Path(default_params_file())
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read parameter file {path}: {err}") from err
    values = _node_section(data, SLFM_NODE.name)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return SLFM_NODE.resolve(values)


def write_node_params(params: Mapping[str, ParamValue], path: str | Path) -> Path:
    """Write ``params`` as a parameter file for slfm_node (any namespace)."""
    target = Path(path)
    body = {f"/**/{SLFM_NODE.name}": {"ros__parameters": dict(params)}}
    target.write_text(yaml.safe_dump(body, sort_keys=True))
    return target
