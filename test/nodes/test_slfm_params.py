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


def test_the_estimator_choices_are_the_registrys_names() -> None:
    # The parameter list names the estimators without importing them (node start-up time);
    # every name it offers must build, and every audio estimator must be offered.
    from slfm_ros.core.estimators import registry
    from slfm_ros.nodes import slfm_params

    assert set(slfm_params.AUDIO_ESTIMATORS) == set(registry.AUDIO_ESTIMATORS)
    assert set(slfm_params.VISUAL_ESTIMATORS) <= set(registry.VISUAL_ESTIMATORS)
