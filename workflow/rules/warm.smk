# Warm start (resources.warm_start): one server process with the heavy modules imported forks each
# local stage job (posepipe.warm). Started when a local run begins, stopped when it ends (the hooks
# in summary.smk call these, beside writing the run's summary).

WARM_SERVER = []  # the pid of this run's warm-start server, if it started one


def start_warm_server():
    """Local runs only, and not when rules run in their conda or container environments (the
    server's Python would not be theirs; jobs that reach another Python start cold anyway)."""
    if not (config["resources"]["warm_start"] and workflow.local_exec and not workflow.deployment_settings.deployment_method):
        return
    from posepipe.warm import WARM_SOCKET_VARIABLE, socket_path, start_server

    weights = [lifter_checkpoint()]
    if SOURCE2D.input == "weights":
        weights.append(detector_weights())
    pid = start_server(log=".snakemake/log/posepipe-warm.log", weights=[w for w in weights if os.path.exists(w)])
    WARM_SERVER.append(pid)
    if pid is None:
        logger.warning("posepipe: the warm-start server did not start; jobs start cold")
    else:  # jobs inherit it: `python -m posepipe STAGE` then asks the server to fork the stage
        os.environ[WARM_SOCKET_VARIABLE] = str(socket_path())


def stop_warm_server():
    from posepipe.warm import stop_server

    stop_server(WARM_SERVER[0] if WARM_SERVER else None)
