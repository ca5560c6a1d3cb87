"""The pipeline's configuration and slfm_node's parameter specification must not drift apart."""

from __future__ import annotations

from dataclasses import MISSING, fields

from slfm_ros.core.streaming.config import PipelineConfig
from slfm_ros.nodes.slfm_params import SLFM_NODE


def test_every_pipeline_field_is_a_node_parameter_with_the_same_default() -> None:
    spec = SLFM_NODE.defaults()
    for f in fields(PipelineConfig):
        assert f.name in spec, f"PipelineConfig.{f.name} has no slfm_node parameter"
        assert f.default is not MISSING, f"PipelineConfig.{f.name} has no default"
        assert f.default == spec[f.name], (
            f"PipelineConfig.{f.name} defaults to {f.default!r}, slfm_node to {spec[f.name]!r}"
        )


def test_the_node_defaults_build_the_default_pipeline() -> None:
    assert PipelineConfig.from_params(SLFM_NODE.defaults()) == PipelineConfig()
