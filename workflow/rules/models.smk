# Published weights, fetched once into resources/models/ with a checksum check. Local rules:
# cluster login nodes have the network, compute nodes often do not.


localrules:
    download_detector_weights,
    download_lifter_weights,
    download_rtmlib_onnx,


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


# rtmlib's ONNX models (keypoints2d.source: rtmlib): the published zip is kept beside the model,
# with its SHA-256 recorded at the first download (OpenMMLab publishes none; posepipe.weights).
RTMLIB_ONNX_NAMES = {f.member_filename: name for name, f in PUBLISHED.items() if f.member}


rule download_rtmlib_onnx:
    output:
        "resources/models/{onnx_model}.onnx",
    wildcard_constraints:
        onnx_model="|".join(re.escape(n.removesuffix(".onnx")) for n in RTMLIB_ONNX_NAMES),
    params:
        name=lambda wildcards: RTMLIB_ONNX_NAMES[f"{wildcards.onnx_model}.onnx"],
    log:
        "resources/models/logs/{onnx_model}.log",
    conda:
        "../../envs/posepipe.yaml"
    shell:
        "python -m posepipe download --name {params.name} --out {output:q} > {log:q} 2>&1"
