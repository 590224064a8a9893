"""A comparison over two live workers with different hardware tags on this machine — one limited to one compute
thread, one to two, and labelled so — through Redis, PostgreSQL and S3; read back by the CLI and the web."""

from __future__ import annotations

import json
import re

from sqlalchemy import create_engine, pool
from support import PROJECT_ROOT, sign_in, unique_tag

from carml.jobs.comparisons import get_comparison
from carml.settings import load_settings
from webapp import create_app


def test_a_comparison_over_two_workers_returns_both_legs_with_all_metrics(
    service_env, start_worker, run_cli, monkeypatch
) -> None:
    one, two = unique_tag("cpu-1thread"), unique_tag("cpu-2threads")
    env = {**service_env, "CARML_HARDWARE_PRICES": f"{one}=0.05,{two}=0.10"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    start_worker(env, one, threads=1)
    start_worker(env, two, threads=2)

    code, out, err = run_cli(
        "compare", "digits-cnn", "-d", "digits-png", "-f", "onnxruntime", "-H", f"{one},{two}", "-b", "32", "--json"
    )
    assert code == 0, err
    comparison = json.loads(out)
    assert comparison["status"] == "succeeded" and comparison["varies"] == ["hardware_tags"]
    legs = {leg["hardware_tag"]: leg for leg in comparison["legs"]}
    assert set(legs) == {one, two}
    assert legs[one]["worker_threads"] == [1] and legs[two]["worker_threads"] == [2]
    for leg in legs.values():
        assert leg["items"] == 360 and leg["top1"] is not None and leg["top1"] > 0.95
        assert 0 < leg["latency_p50_ms"] <= leg["latency_p90_ms"] <= leg["latency_p99_ms"]
        assert leg["throughput_items_per_s"] > 0
        assert leg["cost_per_1000_items"] is not None and leg["cost_per_1000_items"] > 0
        # Energy needs a hardware energy counter (NVML); a CPU worker here has none, and says so with a null.
        assert "joules_per_item" in leg
    assert legs[one]["top1"] == legs[two]["top1"]  # same model, same items: only the speed may differ

    code, out, _ = run_cli("comparison", comparison["id"])
    assert code == 0
    assert f"{one} (1 thr)" in out and f"{two} (2 thr)" in out and "P99 MS" in out

    app = create_app(load_settings(env), lambda *_: None)
    page = sign_in(app.test_client(), load_settings(env)).get(f"/comparisons/{comparison['id']}").get_data(as_text=True)
    assert page.count("data-job-status>succeeded<") == 2
    assert "(1 thread)" in page and "(2 threads)" in page
    assert get_comparison(load_settings(env), comparison["id"])["legs_finished"] == 2

    # The query docs/comparisons.md gives lines the legs up in SQL.
    query = re.search(r"```sql\n(.*?)```", (PROJECT_ROOT / "docs" / "comparisons.md").read_text(), re.DOTALL)
    engine = create_engine(env["CARML_DATABASE_URL"], poolclass=pool.NullPool)
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(query.group(1)).fetchall()
    assert [row[0] for row in rows] == sorted([one, two]) and all(row[3] == legs[one]["top1"] for row in rows)
