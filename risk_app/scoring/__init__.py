"""Batch scoring: probability of default, risk grade, decision, reason codes.

    batch.py    `score_applications`: a frame of valid applications scored with a loaded model
    service.py  `load_model` (alias, version or folder) and `score_with_reasons`
    output.py   output names, atomic no-clobber writes, CSV formula neutralization
    stream.py   `BatchStage`: one file's outputs staged on disk, published whole
    summary.py  running counts and the bounded drift sample of a batch
    staged.py   the path for one file, CLI and Dagster alike: `validate_to_stage` ->
                `score_staged`, and `score_and_record` for both in one call

The package imports none of them, so importing one (`scoring.batch`, say) loads only what it
needs.
"""
