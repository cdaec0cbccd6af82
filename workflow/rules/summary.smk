# results/summary.csv after every run, also one where some videos failed (their row says where
# and why). It is a report of the run, not an input of any job, so it lives outside the DAG.
# After a failed run the reason of each failed video is also printed, one line each, so the
# terminal says why without the workstation profile's show-failed-logs.
from posepipe.summary import write_summary

SUMMARY_STAGES = (
    ("probe", "frames", "keypoints2d")
    + (("tracks",) if config["person"] != "top_score" else ())
    + ("dataset2d", "lift3d", "qc")
    + (("render",) if config["render"]["enabled"] else ())
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


WARM_SERVER = []  # the pid of this run's warm-start server, if it started one


onstart:
    # Local runs only, and not when rules run in their conda or container environments (the
    # server's Python would not be theirs; jobs that reach another Python start cold anyway).
    if config["resources"]["warm_start"] and workflow.local_exec and not workflow.deployment_settings.deployment_method:
        from posepipe.warm import WARM_SOCKET_VARIABLE, socket_path, start_server

        weights = [lifter_checkpoint()]
        if config["keypoints2d"]["source"] == "detectron2":
            weights.append(detector_weights())
        pid = start_server(log=".snakemake/log/posepipe-warm.log", weights=[w for w in weights if os.path.exists(w)])
        WARM_SERVER.append(pid)
        if pid is None:
            logger.warning("posepipe: the warm-start server did not start; jobs start cold")
        else:  # jobs inherit it: `python -m posepipe STAGE` then asks the server to fork the stage
            os.environ[WARM_SOCKET_VARIABLE] = str(socket_path())


onsuccess:
    from posepipe.warm import stop_server

    stop_server(WARM_SERVER[0] if WARM_SERVER else None)
    write_run_summary()


onerror:
    from posepipe.warm import stop_server

    stop_server(WARM_SERVER[0] if WARM_SERVER else None)
    print_failures(write_run_summary())
