# shards: with `shard_frames` set, each video's timeline is cut into contiguous frame ranges once
# it exists (a checkpoint, so the DAG then holds one keypoints2d and one render job per range
# before any of them runs). The shard size is a scheduling setting, like the batch size: not a
# tracked param, so changing it re-runs nothing that is already made (see README, Long videos).


checkpoint shards:
    input:
        "results/{video}/frames/timeline.json",
    output:
        "results/{video}/shards.json",
    params:
        frames=untracked(config["shard_frames"]),
        # Shards start at multiples of the detector's batch: the joined arrays equal the unsharded ones.
        align=untracked(config["keypoints2d"]["batch_size"] if SOURCE2D.align_batches else 1),
    log:
        "results/{video}/logs/shards.log",
    localrule: True
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe shards {input:q} --frames {params.frames} --align {params.align} --out {output:q}"
        " > {log:q} 2>&1"
