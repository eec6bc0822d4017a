"""Property tests: any clean records, any settings, every sample verifies and fits its budget."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosaic_it.config.augment import AugmentConfig
from mosaic_it.mosaic.augment import mosaic_samples
from mosaic_it.mosaic.packer import AugmentReport
from mosaic_it.mosaic.budget import TokenCounter
from mosaic_it.mosaic.verify import check_sample

visible = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=80
).filter(lambda s: s.strip())
long_text = st.builds(lambda word, n: (word + " ") * n, visible, st.integers(50, 400))
record = st.fixed_dictionaries(
    {
        "instruction": visible,
        "input": st.one_of(st.just(""), visible),
        "output": st.one_of(visible, long_text),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.lists(record, min_size=1, max_size=25),
    max_tokens=st.integers(32, 600),
    mode=st.sampled_from(["uniform", "fix_max", "max_length", "exp", "logistic2"]),
    strategy=st.sampled_from(["format", "order", "mask", "both"]),
    seed=st.integers(0, 2**16),
)
def test_any_records_give_verified_samples_within_budget(embedded_tokenizer, records, max_tokens, mode, strategy, seed):
    cfg = AugmentConfig(epochs=2, wrap_mode=mode, max_instructions=6, max_tokens=max_tokens, strategy=strategy, seed=seed)
    report = AugmentReport(input="-", output="-", records=len(records))
    counter = TokenCounter(embedded_tokenizer)
    samples = list(mosaic_samples(records, cfg, embedded_tokenizer, report, show_progress=False))
    for sample in samples:
        assert sample["mosaic"]["max_tokens"] == max_tokens
        assert check_sample(sample, records, counter) == []
    # Nothing is lost: per epoch, every record is either in exactly one sample or skipped.
    used = sum(s["count"] for s in samples)
    assert used + report.skipped_too_long == 2 * len(records)
