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
    and (stage.name != "angles" or config["angles"]["enabled"])
    and (stage.name != "opensim" or OPENSIM_RUNS)
)


def waiting_for():
    """{stage: (published weights it needs, the download job's log)} for the downloads this run
    makes, so that a failed download is every waiting video's reason (see write_summary)."""
    waits = {}
    if not config["lift3d"]["checkpoint"]:
        waits["lift3d"] = (LIFTER_FILE, f"resources/models/logs/{LIFTER_WEIGHTS}.log")
    if SOURCE2D.input == "weights" and not config["keypoints2d"]["weights"]:
        zoo = ZOO_WEIGHTS.get(config["keypoints2d"]["model"])
        if zoo:
            waits["keypoints2d"] = (f"resources/models/{zoo}.pkl", f"resources/models/logs/{zoo}.log")
    return waits


def write_run_summary():
    """Write results/summary.csv; return its rows ([] when there is nothing or it failed)."""
    if not VIDEOS:
        return []
    if DEFAULT_STORAGE:
        return write_stored_summary()
    try:
        return write_summary(list(VIDEOS), out="results/summary.csv", stages=SUMMARY_STAGES, waiting_for=waiting_for())
    except Exception as exc:  # the run's own result matters more than its report
        logger.error(f"posepipe: results/summary.csv could not be written: {type(exc).__name__}: {exc}")
        return []


def write_stored_summary():
    """results/ in a bucket (--default-storage-provider s3): summary.csv is made from the local
    copies of results/, which are all there with --keep-storage-local-copies, and stored beside
    them in the bucket. Returns its rows."""
    url = join_url(DEFAULT_PREFIX, "results/summary.csv")
    if not workflow.storage_settings.keep_storage_local:
        logger.info(f"posepipe: {url} is made from local copies of the results: add --keep-storage-local-copies")
        return []
    local_csv, rows = os.fspath(stored(url)), []
    try:
        rows = write_summary(
            list(VIDEOS), out=local_csv, results=os.path.dirname(local_csv), stages=SUMMARY_STAGES,
            waiting_for=waiting_for(),
        )  # fmt: skip
        OBJECTS.upload(local_csv, url)
    except Exception as exc:  # the run's own result matters more than its report
        logger.error(f"posepipe: {url} could not be written: {type(exc).__name__}: {exc}")
    return rows


def write_run_wide_files(rows):
    """After a failed run: results/qc_summary.csv / .html (a row per video: the complete ones with
    their QC numbers, the others with what failed or is pending) and results/dataset2d_custom.npz
    (the videos whose dataset2d.npz is up to date; the others in its meta "left_out"), which their
    rules, needing every video, could not make. Written whatever else happened; never raises."""
    if not rows or DEFAULT_STORAGE:  # results/ in a bucket: its files are made by their rules only
        return
    from posepipe.dataset2d import merge_dataset2d
    from posepipe.summary import stage_states

    try:
        write_summary(
            list(VIDEOS), out="results/qc_summary.csv", html="results/qc_summary.html", stages=SUMMARY_STAGES,
            waiting_for=waiting_for(),
        )  # fmt: skip
        status = {row["video"]: row["status"] for row in rows}
        done = [v for v in VIDEOS if stage_states(Path("results", v), SUMMARY_STAGES)["dataset2d"][0] == "done"]
        inputs, merged = [f"results/{v}/dataset2d.npz" for v in done], Path("results/dataset2d_custom.npz")
        if len(done) < len(VIDEOS) and done:
            left_out = [{"video": v, "status": status[v]} for v in VIDEOS if v not in done]
            merge_dataset2d(inputs, merged, left_out=left_out)
        elif done and (not merged.exists() or any(os.path.getmtime(i) > merged.stat().st_mtime for i in inputs)):
            merge_dataset2d(inputs, merged)  # every video's, as its rule makes it (the run stopped first)
        complete = sum(s == "complete" for s in status.values())
        logger.error(
            f"posepipe: results/qc_summary.csv/.html cover the {complete} complete of {len(rows)} videos and "
            f"name the others; results/dataset2d_custom.npz holds the {len(done)} with a 2D dataset"
        )
    except Exception as exc:  # the run's own result matters more than its report
        logger.error(f"posepipe: the run-wide files could not be written: {type(exc).__name__}: {exc}")


def print_failures(rows):
    failed = [row for row in rows if row.get("failed_stage")]
    if failed:
        logger.error(f"posepipe: {len(failed)} of {len(rows)} videos failed (results/summary.csv):")
    for row in failed:
        log = row.get("failed_log") or f"results/{row['video']}/logs/{row['failed_stage']}.log"
        logger.error(f"  {row['video']}: {row['status']}  [log: {log}]")


onstart:
    from posepipe.runlock import record_owner

    record_owner()  # who holds the lock now (posepipe/runlock.py)
    start_warm_server()


onsuccess:
    stop_warm_server()
    write_run_summary()


onerror:
    stop_warm_server()
    rows = write_run_summary()
    write_run_wide_files(rows)
    write_evaluate_partial()  # videos with a reference recording (common.smk)
    print_failures(rows)
