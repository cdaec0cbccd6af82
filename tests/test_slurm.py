"""The workflow through a real SLURM: `snakemake --profile profiles/slurm` on a throw-away cluster.

tests/cluster/slurm_up.sh installs (apt-get) and starts a single-node SLURM with one fake GPU on
this machine, and slurm_down.sh stops it and purges the packages again afterwards, also when a
test fails. This changes the machine's system packages, so the test runs only when asked
(``--run-slurm``, or ``-m slurm``; tests/conftest.py deselects it otherwise); where it cannot
work (not root, no apt-get) it is skipped, saying why. Two 1 s videos go through every stage,
each job submitted with sbatch; with the GPU rules present, their jobs must have asked for and
been given a GPU. Keypoints are imported from files and the 3D model is a small random one, so
no detectron2, no download and no real GPU are needed.

The cluster has no accounting database, so the plugin's default status command (sacct) would
wait forever: the test adds `--slurm-status-command squeue` and a short first-check delay, and
caps threads to the node's CPUs (`--max-threads`). Run alone, with timings:
    sudo .venv/bin/python -m pytest -m slurm -s tests/test_slurm.py
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from posepipe.testing import add_video, random_checkpoint
from tests import s3_server as s3_fixtures

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "tests" / "cluster"
PROFILE = REPO / "profiles" / "slurm"
VIDEOS = ("clip_a", "clip_b", "long")
FRAMES = 25  # 1 s at 25 fps
LONG_FRAMES, SHARD_FRAMES = 150, 60  # "long" is cut into 3 shards: 60 + 60 + 30 frames
WIDTH, HEIGHT = 160, 120
# Whole workflow through the queue; SIGINT after this (SIGTERM does not stop snakemake).
RUN_TIMEOUT = int(os.environ.get("POSEPIPE_SLURM_TEST_TIMEOUT", "540"))
# Snakemake's log lines: a submission (a job id, or a group job's uuid), a finished job, a local job.
SUBMITTED = re.compile(r"^Job (\S+) has been submitted with SLURM jobid (\d+) \(log: ([^)]+)\)", re.MULTILINE)
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)", re.MULTILINE)
LOCAL_RULE = re.compile(r"^\s*local(?:rule|checkpoint) (\w+):", re.MULTILINE)
SBATCH_CALL = re.compile(r"^sbatch call: (sbatch .*)$", re.MULTILINE)

TIMES: dict[str, float] = {}


def _sh(script: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(CLUSTER / script), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _report(title: str, proc: subprocess.CompletedProcess) -> None:
    print(f"---- {title} (exit {proc.returncode})\n{proc.stdout}{proc.stderr}", flush=True)


# Teardown purges what slurm_up.sh installed: with slurm-client left installed and no controller,
# the executor plugin's `scontrol show config` at import makes every later `snakemake` wait ~10 s.
DOWN = ("slurm_down.sh", "--purge")


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running single-node SLURM (started here, stopped at the end), or a skip saying why not."""
    started = time.monotonic()
    if os.geteuid() != 0:
        pytest.skip("needs root: tests/cluster/slurm_up.sh installs packages and starts the SLURM daemons")
    if shutil.which("apt-get") is None:
        pytest.skip("needs apt-get (Debian/Ubuntu): tests/cluster/slurm_up.sh installs SLURM with it")
    try:
        up = _sh("slurm_up.sh")
    except subprocess.TimeoutExpired:
        _report("slurm_down.sh", _sh(*DOWN))
        pytest.skip("tests/cluster/slurm_up.sh did not finish in 900 s")
    _report("slurm_up.sh", up)
    if up.returncode != 0:
        _report("slurm_down.sh", _sh(*DOWN))
        reason = {
            2: "this machine cannot run it",
            3: "installing SLURM failed",
            4: "the daemons did not come up",
        }
        last = (up.stderr.strip() or up.stdout.strip()).splitlines()[-1:]
        pytest.skip(
            f"no test cluster: {reason.get(up.returncode, 'slurm_up.sh failed')} "
            f"(exit {up.returncode}: {' '.join(last)})"
        )
    already_running = "already running" in up.stdout
    TIMES["bring-up"] = time.monotonic() - started
    try:
        yield
    finally:
        if already_running:
            print("slurm_down.sh skipped: the cluster was already running before this test session")
        else:
            t0 = time.monotonic()
            down = _sh(*DOWN, timeout=120)
            _report("slurm_down.sh", down)
            TIMES["teardown"] = time.monotonic() - t0
        TIMES["whole SLURM test"] = time.monotonic() - started
        print("SLURM test timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMES.items()), flush=True)


def snakemake_cmd(workdir: Path, config: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(config), *args,
    ]  # fmt: skip


def run_through_slurm(workdir: Path, config: Path, *args: str) -> tuple[int, str]:
    """snakemake with the slurm profile on the test cluster: job states from squeue (the cluster
    keeps no accounting), the first status check after 3 s, the jobs' logs kept, threads capped at
    the node's CPUs; (return code, output)."""
    cpus = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True).stdout.split()[0]
    cmd = snakemake_cmd(
        workdir, config,
        "--profile", str(PROFILE),
        "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "3",
        "--slurm-keep-successful-logs",
        "--max-threads", cpus,
        "--verbose",
        *args,
    )  # fmt: skip
    print("running:", " ".join(cmd), flush=True)
    return run_with_sigint_timeout(cmd, RUN_TIMEOUT)


def run_with_sigint_timeout(cmd: list[str], timeout: int) -> tuple[int, str]:
    """Run ``cmd``; past ``timeout`` send SIGINT (snakemake then cancels its SLURM jobs)."""
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    pytest.fail(
        f"snakemake through SLURM did not finish in {timeout} s (stopped with SIGINT):\n{out[-8000:]}"
    )


def failure_excerpt(out: str) -> str:
    """The error reports of a --verbose snakemake output (which is long), then its last lines."""
    lines = out.splitlines()
    errors = [
        "\n".join(lines[i : i + 12])
        for i, line in enumerate(lines)
        if line.startswith(("Error in rule", "Error in group"))
    ]
    tail = [line for line in lines[-400:] if not line.startswith(("sbatch call", "General args"))][-60:]
    return "\n".join([*errors, "...", *tail])


def scontrol_job(jobid: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "-o", "show", "job", jobid], capture_output=True, text=True).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, tmp_path_factory):
    """The workflow run once through sbatch; returns what the checks need."""
    workdir = tmp_path_factory.mktemp("slurm-workflow")
    for i, name in enumerate(VIDEOS):
        frames = LONG_FRAMES if name == "long" else FRAMES
        add_video(workdir, name, frames=frames, fps=25, width=WIDTH, height=HEIGHT, seed=i)
    config = {
        "input": {"directory": "videos"},
        "keypoints2d": {"source": "file"},
        "lift3d": {"checkpoint": str(random_checkpoint(workdir / "lifter.bin")), "device": "cpu"},
        "render": {"height": 64, "audio": False},
        "shard_frames": SHARD_FRAMES,
    }
    config_path = workdir / "test-config.yaml"
    config_path.write_text(yaml.safe_dump(config))

    listed = subprocess.run(
        snakemake_cmd(workdir, config_path, "--list-rules"), capture_output=True, text=True, check=True
    ).stdout.split()
    full = "lift3d" in listed and "keypoints2d" in listed
    # The whole workflow when its later stages exist, else the stages there are.
    targets = [] if full else [f"results/{v}/frames/timeline.json" for v in VIDEOS]

    t0 = time.monotonic()
    returncode, out = run_through_slurm(workdir, config_path, *targets)
    TIMES["workflow through SLURM"] = time.monotonic() - t0
    (workdir / "snakemake-output.txt").write_text(out)
    assert returncode == 0, f"snakemake through SLURM failed ({returncode}):\n{failure_excerpt(out)}"

    slurm = {}
    for _, slurm_id, log in SUBMITTED.findall(out):
        slurm[slurm_id] = {**scontrol_job(slurm_id), "log": log}
    return {
        "workdir": workdir, "out": out, "full": full, "slurm": slurm,
        "finished": FINISHED.findall(out), "local_rules": set(LOCAL_RULE.findall(out)),
        "sbatch_calls": SBATCH_CALL.findall(out),
    }  # fmt: skip


def covers(comment: str, rule: str) -> bool:
    """Whether a SLURM job's comment names ``rule``: ``rule_<rule>_wildcards_...`` for a single
    job, ``rule_<group>_<member>_<member>...`` for a group job (members in sorted order)."""
    return re.search(rf"(^rule_|_){re.escape(rule)}(_|$)", comment) is not None


def test_every_job_ran_as_a_slurm_job(slurm_run):
    workdir, slurm = slurm_run["workdir"], slurm_run["slurm"]
    assert "SLURM run ID" in slurm_run["out"]
    assert slurm, "no job was submitted with sbatch"
    for slurm_id, info in slurm.items():
        assert info.get("JobState") == "COMPLETED", f"SLURM job {slurm_id}: {info}"
        assert Path(info["log"]).is_file(), f"no SLURM log for job {slurm_id}: {info['log']}"
    # Each job that ran outside Snakemake's local rules ran inside a SLURM job (alone or in a group).
    ran: dict[str, int] = {}
    for _, rule in slurm_run["finished"]:
        if rule not in slurm_run["local_rules"]:
            ran[rule] = ran.get(rule, 0) + 1
    # With shard_frames set, keypoints2d and render run as shard jobs; their gathers are local rules.
    expected = {"probe", "frames"} | (
        {"keypoints2d_shard", "dataset2d", "lift3d", "render_shard"} if slurm_run["full"] else set()
    )
    assert expected <= set(ran), f"jobs that ran: {ran}"
    for rule, count in ran.items():
        in_slurm = [i for i in slurm.values() if covers(i.get("Comment", ""), rule)]
        assert len(in_slurm) >= count, (
            f"{count} {rule} jobs ran, {len(in_slurm)} SLURM jobs for them: {slurm}"
        )
    for video in VIDEOS:
        assert json.loads((workdir / f"results/{video}/frames/timeline.json").read_text())["frame_count"] == (
            LONG_FRAMES if video == "long" else FRAMES
        )
    if slurm_run["full"]:
        for video in VIDEOS:
            for output in ("keypoints2d.npz", "dataset2d.npz", "pose3d.npz", "render.mp4"):
                assert (workdir / "results" / video / output).is_file()


def job_start(out: str, rule: str, video: str) -> int | None:
    """Offset in ``out`` where the local job of ``rule`` for ``video`` is announced, or None."""
    for match in re.finditer(rf"^\s*localrule {rule}:$", out, re.MULTILINE):
        block = out[match.end() : out.find("\n\n", match.end())]
        if re.search(rf"wildcards: video={video}\b", block):
            return match.start()
    return None


def test_a_long_video_is_several_slurm_jobs_gathered_after_them(slurm_run):
    """``long`` (3 shards) is 3 keypoints2d_shard and 3 render_shard SLURM jobs; each gather (a local
    rule) starts after the last of its shards finished."""
    if not slurm_run["full"]:
        pytest.skip("the workflow has no keypoints2d rule yet")
    out, slurm = slurm_run["out"], slurm_run["slurm"]
    for rule in ("keypoints2d_shard", "render_shard"):
        jobs = [
            i for i in slurm.values() if covers(i.get("Comment", ""), rule) and "long" in i.get("Comment", "")
        ]
        assert len(jobs) == 3, (rule, [i.get("Comment") for i in slurm.values()])
        assert all(i["JobState"] == "COMPLETED" for i in jobs)
        gather = "keypoints2d" if rule == "keypoints2d_shard" else "render"
        started = job_start(out, gather, "long")
        assert started is not None, f"no local {gather} job for long in the output"
        # This video's shard jobs: Snakemake job ids whose SLURM log is under .../<rule>/long_*/.
        ids = {job for job, _, log in SUBMITTED.findall(out) if f"/rule_{rule}/long_" in log}
        finished = [
            m.start()
            for m in re.finditer(rf"^Finished jobid: (\d+) \(Rule: {rule}\)", out, re.MULTILINE)
            if m.group(1) in ids
        ]
        assert len(finished) >= 3 and started > max(finished), (rule, finished, started)
    assert (slurm_run["workdir"] / "results/long/keypoints2d.npz").is_file()


def test_gpu_rules_asked_for_and_got_a_gpu(slurm_run):
    slurm = slurm_run["slurm"]
    if not slurm_run["full"]:
        pytest.skip("the workflow has no GPU rule (lift3d) yet")
    # lift3d declares gpu=1; keypoints2d imported from a file declares gpu=0 and must not get one.
    gpu_jobs = {i: info for i, info in slurm.items() if covers(info.get("Comment", ""), "lift3d")}
    # keypoints2d_shard of an import asks for no GPU either (it would under source: detectron2,
    # which tests/test_shards.py checks in the plan).
    assert len(gpu_jobs) == len(VIDEOS), slurm
    for slurm_id, info in slurm.items():
        comment = info.get("Comment", "")
        calls = [
            c for c in slurm_run["sbatch_calls"] if re.search(rf"--comment '?{re.escape(comment)}'? ", c)
        ]
        assert calls, f"no sbatch call with --comment {comment} in the log"
        if slurm_id in gpu_jobs:
            assert all(re.search(r" --gpus=1( |$)", c.split(" --wrap=")[0]) for c in calls), calls
            assert info["TresPerJob"] in ("gres:gpu:1", "gres/gpu:1", "gpu:1"), info
            assert info["Partition"] == "gpu", info  # the profile's GPU partition
        else:
            assert not any("--gpus" in c.split(" --wrap=")[0] for c in calls), calls
            assert "gpu" not in info.get("TresPerJob", ""), info
            if not covers(comment, "keypoints2d"):
                assert info["Partition"] == "cpu", info  # the profile's default partition
    # Inside the job SLURM set CUDA_VISIBLE_DEVICES to the GPU it gave, and `posepipe with-gpu` kept it.
    for video in VIDEOS:
        log = (slurm_run["workdir"] / f"results/{video}/logs/lift3d.log").read_text()
        assert "CUDA_VISIBLE_DEVICES='0' already set" in log, log


s3_server, s3 = s3_fixtures.s3_server, s3_fixtures.s3  # a moto S3 server on loopback (tests/s3_server.py)


def bucket_clip(s3, tmp_path: Path) -> tuple[Path, Path]:
    """One 10-frame clip and its COCO keypoints uploaded to s3://lab/in/, and a working folder
    with the test's config (keypoints from the file, a small random lifter, no render extras);
    returns the working folder and the config's path."""
    client = s3.client()
    client.create_bucket(Bucket="lab")
    source = tmp_path / "source"
    add_video(source, "bucketclip", frames=10, seed=7)
    for name in ("bucketclip.mp4", "bucketclip.coco.json"):
        client.upload_file(str(source / "videos" / name), "lab", f"in/{name}")
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = {
        "input": {"directory": "s3://lab/in"},
        "keypoints2d": {"source": "file"},
        "lift3d": {"checkpoint": str(random_checkpoint(workdir / "lifter.bin")), "device": "cpu"},
        "render": {"height": 64, "audio": False, "preview": False},
        "exports": [],
        "angles": {"figure": False},
    }
    config_path = workdir / "test-config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    return workdir, config_path


def test_a_video_from_a_bucket_runs_through_sbatch(slurm_cluster, s3, tmp_path):
    """One 10-frame clip and its COCO keypoints in a bucket on the local S3 server, the slurm
    profile, results local, up to the 3D poses: every job is a SLURM job that stages its inputs
    from the bucket (the endpoint and credentials reach the jobs through the environment sbatch
    passes on). The whole workflow from a bucket is tests/test_workflow_s3.py's; here 3 jobs keep
    the extra time to about a minute (each SLURM job costs polling time)."""
    workdir, config_path = bucket_clip(s3, tmp_path)
    t0 = time.monotonic()
    # probe+frames, keypoints2d, lift: 3 SLURM jobs, about a minute
    returncode, out = run_through_slurm(workdir, config_path, "results/bucketclip/pose3d.npz")
    TIMES["one video from a bucket through SLURM"] = time.monotonic() - t0
    assert returncode == 0, f"snakemake through SLURM failed ({returncode}):\n{failure_excerpt(out)}"

    slurm = {slurm_id: scontrol_job(slurm_id) for _, slurm_id, _ in SUBMITTED.findall(out)}
    assert slurm, "no job was submitted with sbatch"
    assert all(info.get("JobState") == "COMPLETED" for info in slurm.values()), slurm
    # The timeline group (probe + frames) ran in a SLURM job and read the video from the bucket.
    assert any(covers(info.get("Comment", ""), "probe") for info in slurm.values()), slurm
    results = workdir / "results" / "bucketclip"
    timeline = json.loads((results / "frames" / "timeline.json").read_text())
    assert timeline["frame_count"] == 10
    for output in ("keypoints2d.npz", "dataset2d.npz"):
        assert (results / output).is_file(), output
    pose3d = np.load(results / "pose3d.npz")
    assert pose3d["positions_3d"].shape[-3:] == (10, 17, 3) and np.isfinite(pose3d["positions_3d"]).all()


def test_results_in_a_bucket_with_node_local_staging(slurm_cluster, s3, tmp_path):
    """The slurm profile's storage block: inputs and results in the bucket, each SLURM job staging
    its own inputs under a node-local prefix (no shared disk for the data). probe, frames,
    keypoints2d and dataset2d run as SLURM jobs, each its own (no group jobs under node-local
    staging, see NODE_LOCAL_STAGING in workflow/rules/common.smk); lift3d reads the lifter
    checkpoint by its local path, so Snakemake runs it on the host snakemake runs on. pose3d.npz
    lands in the bucket, and a second run plans no job. 4 SLURM jobs: about 70 s."""
    workdir, config_path = bucket_clip(s3, tmp_path)
    node_local = tmp_path / "node-local"  # the same path on every node (here: the one node)
    storage = [
        "--default-storage-provider", "s3",
        "--default-storage-prefix", "s3://lab/run1",
        "--keep-storage-local-copies",
        "--shared-fs-usage", "persistence", "software-deployment", "sources", "source-cache",
        "--remote-job-local-storage-prefix", str(node_local),
    ]  # fmt: skip
    t0 = time.monotonic()
    returncode, out = run_through_slurm(workdir, config_path, *storage, "results/bucketclip/pose3d.npz")
    TIMES["results in a bucket, node-local staging"] = time.monotonic() - t0
    assert returncode == 0, f"snakemake through SLURM failed ({returncode}):\n{failure_excerpt(out)}"

    submitted = SUBMITTED.findall(out)
    slurm = {slurm_id: {**scontrol_job(slurm_id), "log": log} for _, slurm_id, log in submitted}
    assert all(info.get("JobState") == "COMPLETED" for info in slurm.values()), slurm
    comments = [info.get("Comment", "") for info in slurm.values()]
    for rule in ("probe", "frames", "keypoints2d", "dataset2d"):
        assert [c for c in comments if covers(c, rule)] == [f"rule_{rule}_wildcards_bucketclip"], comments
    assert not any(covers(c, "lift3d") for c in comments), comments  # its checkpoint is a local file
    assert "lift3d" in {rule for _, rule in FINISHED.findall(out)}, out[-4000:]
    # The jobs staged on the node: the SLURM job's command read and wrote under the node-local prefix.
    dataset2d_log = next(i["log"] for i in slurm.values() if covers(i.get("Comment", ""), "dataset2d"))
    assert (
        f"--out {node_local}/s3/lab/run1/results/bucketclip/dataset2d.npz" in Path(dataset2d_log).read_text()
    )
    assert not (workdir / "results").exists()  # nothing of the results on the shared disk

    client = s3.client()
    keys = {o["Key"] for o in client.list_objects_v2(Bucket="lab", Prefix="run1/")["Contents"]}
    for name in ("frames/timeline.json", "keypoints2d.npz", "dataset2d.npz", "pose3d.npz", "logs/lift3d.log"):
        assert f"run1/results/bucketclip/{name}" in keys, sorted(keys)
    pose3d_path = tmp_path / "pose3d.npz"
    client.download_file("lab", "run1/results/bucketclip/pose3d.npz", str(pose3d_path))
    pose3d = np.load(pose3d_path)
    assert pose3d["positions_3d"].shape[-3:] == (10, 17, 3) and np.isfinite(pose3d["positions_3d"]).all()

    again = subprocess.run(
        snakemake_cmd(workdir, config_path, "--profile", str(PROFILE), *storage, "-n", "results/bucketclip/pose3d.npz"),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout + again.stderr
