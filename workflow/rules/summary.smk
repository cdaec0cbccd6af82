# results/summary.csv after every run, also one where some videos failed (their row says where
# and why). It is a report of the run, not an input of any job, so it lives outside the DAG.
from posepipe.summary import write_summary

SUMMARY_STAGES = ("probe", "frames", "keypoints2d", "dataset2d", "lift3d") + (
    ("render",) if config["render"]["enabled"] else ()
)


def write_run_summary():
    if VIDEOS:
        write_summary(list(VIDEOS), out="results/summary.csv", stages=SUMMARY_STAGES)


onsuccess:
    write_run_summary()


onerror:
    write_run_summary()
