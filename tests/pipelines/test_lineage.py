"""The lineage graph an analyst reads (issue 21 §6): one chain per training run after
fine-tuning, `dataset_spec` no longer fanned out to every stage, and no two asset names that
look alike when Dagster cuts them in the middle at the graph's fit zoom."""

from __future__ import annotations

import dagster as dg

from pipelines.definitions import defs

GRAPH = defs.resolve_asset_graph()


def _parents(name: str) -> set[str]:
    return {key.to_user_string() for key in GRAPH.get(dg.AssetKey(name)).parent_keys}


def test_stages_after_fine_tuning_form_one_chain() -> None:
    # They read the run's own rows and spec from its folder (workflow.run_inputs).
    assert _parents("credit_policy") == {"fine_tuned_model"}
    assert _parents("model_evaluation") == {"credit_policy"}
    assert _parents("packaged_model") == {"model_evaluation"}


def test_dataset_spec_feeds_only_the_assets_that_read_it_first_hand() -> None:
    children = {key.to_user_string() for key in GRAPH.get(dg.AssetKey("dataset_spec")).child_keys}
    assert not children & {"credit_policy", "model_evaluation", "packaged_model"}
    assert len(children) <= 9, sorted(children)


def test_asset_names_stay_apart_when_cut_in_the_middle() -> None:
    # At fit zoom the graph shows about 18 characters: the first few, "…", the last 13.
    names = [key.to_user_string() for key in GRAPH.get_all_asset_keys()]
    shown = [n if len(n) <= 18 else f"{n[:4]}…{n[-13:]}" for n in names]
    assert len(set(shown)) == len(shown), sorted(n for n in shown if shown.count(n) > 1)
