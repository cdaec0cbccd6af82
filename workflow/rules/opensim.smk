# opensim (off by default, opensim.enabled): OpenSim scaling and inverse kinematics per person into
# results/{video}/opensim/ (written whole or not at all). Reads world.npz when the workflow has the
# world stage, else pose3d.npz. Needs OpenSim's Python package (pip install 'posepipe[opensim]');
# without it the stage is left out with one line (common.smk, OPENSIM_RUNS), and a job started
# anyway stops with that line in its log.


rule opensim:
    input:
        unpack(opensim_inputs),
    output:
        directory("results/{video}/opensim"),
    params:
        version=STAGE_VERSIONS["opensim"],
        source=opensim_source,
        options=opensim_options(),
    log:
        "results/{video}/logs/opensim.log",
    benchmark:
        "results/{video}/benchmarks/opensim.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe opensim {params.source} --timeline {input.timeline:q} --out-dir {output:q}"
        " --dataset2d {input.dataset2d:q}"
        " {params.options} > {log:q} 2>&1"
