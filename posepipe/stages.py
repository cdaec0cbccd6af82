"""Stage versions: the policy for re-running after a code change.

Each rule passes its stage's version as a Snakemake ``params`` value, and every output records
it. Bump a number when a change to that stage's code changes its output for the same input:
Snakemake then sees changed params and re-runs that stage and everything downstream of it for
every video. Refactors that keep outputs identical leave the number alone, so nobody re-runs
hours of GPU work for a renamed variable.
"""

STAGE_VERSIONS = {
    "probe": 2,  # 2: damage record (frames promised, decoded, decode errors)
    "frames": 2,  # 2: warnings for frames lost to damage
    "keypoints2d": 1,
    "shards": 1,
    "tracks": 1,
    "dataset2d": 1,
    "lift3d": 1,
    "render": 1,
    "qc": 1,
    "export": 1,
}
