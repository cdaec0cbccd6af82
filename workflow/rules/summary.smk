# results/summary.csv after every run, also one where some videos failed (their row says where
# and why). It is a report of the run, not an input of any job, so it lives outside the DAG.
# After a failed run the reason of each failed video is also printed, one line each, so the
# terminal says why without the workstation profile's show-failed-logs.
from posepipe.registry import STAGES
from posepipe.summary import write_summary

# The stages with a per-video output (posepipe.registry.STAGES) that this run makes.
SUMMARY_STAGES = tuple(
    stage.name
    for stage in STAGES
    if stage.output
    and (stage.name != "tracks" or TRACKED)
    and (stage.name != "render" or config["render"]["enabled"])
)


def write_run_summary():
    """Write results/summary.csv; return its rows ([] when there is nothing or it failed)."""
    if not VIDEOS:
        return []
    try:
        return write_summary(list(VIDEOS), out="results/summary.csv", stages=SUMMARY_STAGES)
    except Exception as exc:  # the run's own result matters more than its report
        logger.error(f"posepipe: results/summary.csv could not be written: {type(exc).__name__}: {exc}")
        return []


def print_failures(rows):
    failed = [row for row in rows if row.get("failed_stage")]
    if failed:
        logger.error(f"posepipe: {len(failed)} of {len(rows)} videos failed (results/summary.csv):")
    for row in failed:
        log = f"results/{row['video']}/logs/{row['failed_stage']}.log"
        logger.error(f"  {row['video']}: {row['status']}  [log: {log}]")


onstart:
    start_warm_server()


onsuccess:
    stop_warm_server()
    write_run_summary()


onerror:
    stop_warm_server()
    print_failures(write_run_summary())
