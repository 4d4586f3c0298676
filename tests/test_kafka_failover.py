"""Two workers in one consumer group split the partitions; when one is killed (SIGKILL, no goodbye),
the other takes over its patients, restores their state from the changelog and continues.

This run uses the worker's own arterial schedule (``--calibration once``: labels from the ABP in the
stream) and a replay without calibration commands, the second way to run a validation through Kafka,
and publishes the test-time-trained model (``ttt``, torch state in the changelog). It runs under each
processing guarantee: ``at_least_once`` (the default) on both brokers, and ``exactly_once`` (Kafka transactions,
outputs read ``read_committed``) on Apache Kafka only when ``BPSTREAM_TEST_EOS_FAILOVER=1`` (it is flaky in the
full suite, so CI skips that case and says why); the duplicates each publishes are counted and printed.
Every window is compared with the in-process ``validate`` loop; what differs must be one of the
documented failover effects (README, "What can be lost on failover"), each named below.
"""

from __future__ import annotations

import os
import time

import pytest

from ._data import record
from ._failover import AFTER_GAP_MMHG  # bound on the drift after a lost span, measured there
from ._kafka import WorkerProcess, read_topic, settings_for
from .test_kafka_service import START_S, in_process
from bpstream.stream.kafka._schemas import from_iso
from bpstream.stream.kafka._publish import replay

pytestmark = pytest.mark.kafka

# patient ids picked so that murmur2(key) % 4 covers partitions 0, 1, 2, 3
PATIENTS = {"a555l-3": "a555l", "f362s-11": "f362s", "v370s-0": "v370s", "b330s-2": "b330s"}
SPLIT_S = 150.0  # seconds of each record replayed before the kill
METHODS = ("ttt", "carry_forward")  # the first is published


def _estimates(settings, expected_ends: dict[str, set[float]], timeout_s: float = 120.0) -> list[dict]:
    isolation = "read_committed" if settings.processing_guarantee == "exactly_once" else "read_uncommitted"
    def done(docs):
        seen: dict[str, set[float]] = {}
        for d in docs:
            seen.setdefault(d["patient_id"], set()).add(round(from_iso(d["window_end"]) - START_S, 3))
        return all(ends <= seen.get(p, set()) for p, ends in expected_ends.items())

    return read_topic(settings, settings.topic_estimates, done, timeout_s=timeout_s, isolation_level=isolation)


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_failover_to_the_surviving_worker_restores_state_and_continues(broker, tmp_path, guarantee):
    if guarantee == "exactly_once" and broker.engine != "kafka":
        pytest.skip("exactly_once needs Kafka transactions; Tansu has none (the worker refuses it: test_kafka_guarantee)")
    if guarantee == "exactly_once" and os.environ.get("BPSTREAM_TEST_EOS_FAILOVER") != "1":
        # Opt-in, not in CI: in two full CI runs on 2026-12-02 (the whole suite, Apache Kafka 4.1.1) a patient's
        # last windows never became readable under read_committed within 150 s / 270 s (466 and 450 estimates
        # read), while the same test passed 5 of 5 times alone and in a Kafka-tier-only run. Not understood yet
        # (README "Processing guarantees"); the default guarantee, at_least_once, is checked here on both engines.
        pytest.skip("exactly_once failover: opt-in with BPSTREAM_TEST_EOS_FAILOVER=1 (flaky in the full suite)")
    settings = settings_for(broker, "fo", calibration="once", methods=METHODS, processing_guarantee=guarantee)
    runs = {p: in_process(r, "once", METHODS) for p, r in PATIENTS.items()}
    paths = [record(r) for r in PATIENTS.values()]
    a = WorkerProcess(settings, tmp_path, "a")
    b = WorkerProcess(settings, tmp_path, "b")
    try:
        a.wait_ready()
        b.wait_ready()
        time.sleep(2.0)  # let the group settle after the second join
        replay(settings, paths, speed=0, calibration="off", start_s=START_S, t_to_s=SPLIT_S, ids=list(PATIENTS))
        # windows completed by the first part: their end is at most SPLIT_S
        first = {p: {round(w.t_end_s, 3) for w in r.windows if w.t_end_s <= SPLIT_S} for p, r in runs.items()}
        docs = _estimates(settings, first)
        owner = {}
        for d in docs:
            owner[d["patient_id"]] = d["_worker"]  # the newest publisher of each patient
        pids = {p: int(w.rsplit(":", 1)[1]) for p, w in owner.items()}
        assert set(pids.values()) == {a.process.pid, b.process.pid}, f"partitions not split: {pids}"
        on_a = [p for p, pid in pids.items() if pid == a.process.pid]

        a.kill()
        t_kill = time.monotonic()
        replay(settings, paths, speed=0, calibration="off", start_s=START_S, t_from_s=SPLIT_S, ids=list(PATIENTS))
        all_ends = {p: {round(w.t_end_s, 3) for w in r.windows} for p, r in runs.items()}
        # windows lost on failover never arrive; wait for the last window of every patient instead
        last = {p: {max(ends)} for p, ends in all_ends.items()}
        # exactly_once: read_committed stops at the killed worker's open transaction until the broker aborts it
        # (transaction timeout), so the last windows can take a minute longer to become readable
        try:
            docs = _estimates(settings, last, timeout_s=150.0 if guarantee == "at_least_once" else 270.0)
        except AssertionError as exc:  # say what the survivor was doing
            raise AssertionError(f"{exc}\n--- survivor's log (tail) ---\n{b.log()[-6000:]}") from None
        takeover_s = time.monotonic() - t_kill
    finally:
        a.stop()
        b.stop()

    assert "Traceback" not in b.log(), b.log()[-3000:]
    report = []
    keys = [(d["patient_id"], d["window_end"]) for d in docs]
    # the same window published again (re-processing after the kill); each copy must equal validate's (below).
    # Not asserted 0 under exactly_once: faust-streaming's transactions do not prevent them here (README,
    # "Processing guarantees"; faust-streaming issues #517, #177)
    duplicates = len(keys) - len(set(keys))
    for patient, run in runs.items():
        mine = [d for d in docs if d["patient_id"] == patient]
        by_end: dict[float, list[dict]] = {}
        for d in mine:
            by_end.setdefault(round(from_iso(d["window_end"]) - START_S, 3), []).append(d)
        assert {d["model"]["name"] for d in mine} == {METHODS[0]}
        after = [d for d in mine if from_iso(d["window_end"]) - START_S > SPLIT_S + 10]
        assert after and all(int(d["_worker"].rsplit(":", 1)[1]) == b.process.pid for d in after)
        missing = [round(w.t_end_s, 3) for w in run.windows if round(w.t_end_s, 3) not in by_end]
        worst_after_gap = 0.0
        for w in run.windows:
            t = round(w.t_end_s, 3)
            if t in missing:
                continue
            # after a lost span (the Tansu gap below) the restored model missed those windows'
            # self-supervised updates and the resampler restarted: the estimates differ from an
            # uninterrupted run by that much, and no more than AFTER_GAP_MMHG
            tol = 1e-6 if not missing or t < min(missing) else AFTER_GAP_MMHG
            est = w.estimates[METHODS[0]]
            for d in by_end[t]:  # duplicates (at-least-once re-processing) must agree with validate too
                assert d["validity"] == est.validity.value, (patient, t, d["validity"], est)
                for q, v in (("sbp", est.sbp_mmhg), ("dbp", est.dbp_mmhg), ("map", est.map_mmhg)):
                    got = d[q]["value"] if d[q] else None
                    assert (got is None) == (v is None), (patient, t, q, got, v)
                    if v is not None:
                        assert abs(got - v) <= tol, (patient, t, q, got, v, missing)
                        if missing and t > min(missing):
                            worst_after_gap = max(worst_after_gap, abs(got - v))
        # state restored, not restarted: the per-patient sequence continues where the killed worker
        # left it (a fresh state would start again at 1) and the calibration learned before the kill
        # is still there
        if not missing:
            assert sorted({d["seq"] for d in mine}) == [w.seq for w in run.windows]
        assert min(d["seq"] for d in after) > 1
        assert all(d["calibration"]["count"] >= 1 for d in after if any(w.labels for w in run.windows))
        # Apache Kafka reports end offsets exactly: nothing may be lost there (the allowance below is Tansu's)
        assert not missing or broker.engine == "tansu", (broker.engine, patient, missing)
        if missing:
            # named difference (Tansu only): windows lost on failover. Only the patients of the killed worker may lose
            # any, only around the kill, and only the window span of one stream reset: the survivor's
            # restored state was a changelog record or two behind (Tansu's ListOffsets under-reports the
            # end) or the killed worker's last outputs were never flushed, so the windower met a gap in
            # time, started a new segment, and the next window ends window_s after it.
            assert patient in on_a, (patient, missing)
            assert all(SPLIT_S - 20 <= t <= SPLIT_S + 30 for t in missing), (patient, missing)
            assert len(missing) <= 10, (patient, missing)
            report.append(f"{patient}: {len(missing)} windows lost at {min(missing):g}-{max(missing):g} s, "
                          f"later estimates within {worst_after_gap:.2g} mmHg of validate")
    print(f"[{broker.engine} {guarantee}] takeover + rest of replay: {takeover_s:.1f} s; duplicates {duplicates}; "
          f"patients on the killed worker: {on_a}; "
          + ("; ".join(report) or "no window lost"))
