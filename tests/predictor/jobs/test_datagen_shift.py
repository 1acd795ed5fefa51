"""The generator's drift flag: shifted features move, the others stay byte-identical."""

import numpy as np
import pandas as pd
import pytest

from predictor.jobs.datagen import DataSpec, main, shift_features, user_snapshots

pytestmark = pytest.mark.unit


def test_shift_moves_only_the_named_features():
    snaps = user_snapshots(DataSpec(n_users=500, n_weeks=2))
    out = shift_features(snaps, {"click_through_rate": 2.0, "sessions_last_7d": 3.0})
    assert out["click_through_rate"].mean() > 1.8 * snaps["click_through_rate"].mean()
    assert out["sessions_last_7d"].dtype == snaps["sessions_last_7d"].dtype
    assert out["sessions_last_7d"].mean() > 2.5 * snaps["sessions_last_7d"].mean()
    for same in ("number_of_clicks", "average_page_duration", "conversion_rate", "user_id"):
        pd.testing.assert_series_equal(out[same], snaps[same])
    # noise: ranking changes too, not only the scale
    assert np.corrcoef(out["click_through_rate"], snaps["click_through_rate"])[0, 1] < 0.95
    with pytest.raises(ValueError, match="cannot shift"):
        shift_features(snaps, {"nope": 2.0})


def test_cli_flag(tmp_path):
    args = ["--repo", str(tmp_path), "--users", "50", "--weeks", "2", "--end", "2026-01-01"]
    main(args)
    plain = pd.read_parquet(tmp_path / "data" / "user_data.parquet")
    events = pd.read_parquet(tmp_path / "data" / "events.parquet")
    main([*args, "--shift", "conversion_rate=3"])
    shifted = pd.read_parquet(tmp_path / "data" / "user_data.parquet")
    assert shifted["conversion_rate"].mean() > 2 * plain["conversion_rate"].mean()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "data" / "events.parquet"), events)
    with pytest.raises(SystemExit):
        main([*args, "--shift", "conversion_rate=x"])
