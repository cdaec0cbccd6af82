# Published weights, fetched once into resources/models/ with a checksum check. Local rules:
# cluster login nodes have the network, compute nodes often do not.


localrules:
    download_detector_weights,
    download_lifter_weights,


rule download_detector_weights:
    output:
        "resources/models/{zoo_model}.pkl",
    wildcard_constraints:
        zoo_model="keypoint_rcnn_[A-Za-z0-9_]+",
    log:
        "resources/models/logs/{zoo_model}.log",
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe download --name {wildcards.zoo_model} --out {output:q} > {log:q} 2>&1"


rule download_lifter_weights:
    output:
        LIFTER_FILE,
    log:
        f"resources/models/logs/{LIFTER_WEIGHTS}.log",
    conda:
        "../../envs/posepipe.yaml"
    shell:
        f"python -m posepipe download --name {LIFTER_WEIGHTS} --out {{output:q}} > {{log:q}} 2>&1"
